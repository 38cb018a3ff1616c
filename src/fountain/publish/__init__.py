"""``fountain publish``: turn an output folder into a dataset others can load and trust: train/test
splits without leaks, a dataset card that says where the data came from (spec, diagram, model,
counts, quality, cost, privacy), LLaMA-Factory and Axolotl configs, written to a folder or pushed
to the Hugging Face Hub (``hf://OWNER/NAME``)."""
