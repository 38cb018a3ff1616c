"""The edge voting service: Private Evolution votes computed where the private data lives.

A data owner runs ``fountain edge serve`` next to the private conversations; a generator
(``fountain run --framework Feedback --rater PE --edge URL``) sends it the SYNTHETIC candidates of
each PE iteration and gets back the noisy vote histogram only. The owner's service keeps its own
privacy ledger (Gaussian DP, charged and persisted before each draw of noise) and refuses a vote
over its budget. See docs/edge.md.

Modules: ``config`` (the service's settings, limits and token), ``ledger`` (the persistent
ledger), ``votes`` (request checking, embedding, the noisy histogram), ``app`` (the Starlette
routes), ``server`` (uvicorn, in the foreground or a thread), ``client`` (the generator's side;
the only module :mod:`fountain.frameworks` may import).
"""
