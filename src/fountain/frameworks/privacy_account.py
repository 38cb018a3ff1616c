"""The privacy account of a PE run: the ledger rebuilt from the state file, each release charged
and persisted before its noise is drawn, and the manifest's privacy section."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fountain.errors import PrivacyBudgetError
from fountain.frameworks.edge_votes import edge_privacy_section, open_edge_ledger, uses_edges

if TYPE_CHECKING:  # pragma: no cover
    from fountain.frameworks.context import RunContext
    from fountain.frameworks.plan import PrivacyPlan
    from fountain.raters.privacy import PrivacyLedger


class PrivacyAccount:
    """The ledger of one run (None until :meth:`open`)."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self.ledger: PrivacyLedger | None = None

    @property
    def plan(self) -> PrivacyPlan:
        privacy = self.ctx.plan.privacy
        if privacy is None:
            raise RuntimeError("a privacy account needs a PE plan")
        return privacy

    def open(self, releases_left: int) -> None:
        """Rebuild the ledger from the state and refuse a plan that would end over budget."""
        if uses_edges(self.ctx.plan):  # the edges keep the ledgers (fountain.frameworks.edge_votes)
            open_edge_ledger(self, releases_left)
            return
        from fountain.raters.privacy import PrivacyLedger

        privacy = self.ctx.plan.privacy
        assert privacy is not None  # a privacy account is made only for a PE plan
        ledger = PrivacyLedger(delta=privacy.delta, epsilon_budget=privacy.epsilon_budget)
        for entry in self.ctx.state.get("ledger", []):
            ledger.record(float(entry["sigma"]))
        preview = PrivacyLedger(delta=privacy.delta)
        for entry in ledger.entries:
            preview.record(entry.sigma)
        for _ in range(max(0, releases_left)):
            preview.record(privacy.sigma)
        if preview.epsilon > privacy.epsilon_budget * (1 + 1e-9):
            raise PrivacyBudgetError(
                f"the plan would spend epsilon = {preview.epsilon:.4g} in all ({len(ledger.entries)} "
                f"iteration(s) already spent, {releases_left} to go with sigma = {privacy.sigma:.4g}), "
                f"more than the budget epsilon = {privacy.epsilon_budget:.4g}",
                hint="an iteration was interrupted after its noise was drawn and must not be drawn again "
                "within this budget; start a new run with --output, or raise --epsilon"
                if ledger.entries
                else "use a larger --sigma, fewer --iterations or a larger --epsilon",
            )
        self.ledger = ledger
        self._write()

    def spend(self, iteration: int) -> None:
        """Charge one release to the ledger and persist it BEFORE the noisy histogram is drawn:
        a crash in between costs budget instead of drawing fresh noise for free."""
        assert self.ledger is not None
        entry = self.ledger.record(self.plan.sigma)
        self.ctx.state.setdefault("ledger", []).append({"iteration": iteration, "sigma": entry.sigma})
        self.ctx.save_state()
        self._write()

    def section(self) -> dict[str, Any] | None:
        if uses_edges(self.ctx.plan):
            return edge_privacy_section(self)
        if self.ledger is None:
            return None
        data = self.ledger.to_dict()
        entries = data.pop("iterations")
        iterations = [e.get("iteration") for e in self.ctx.state.get("ledger", [])]
        for entry, number in zip(entries, iterations):
            entry["iteration"] = number  # the Feedback iteration / Filter round that spent it
        threshold = self.ctx.plan.threshold
        if threshold is None:
            from fountain.raters.pe import default_threshold

            threshold = default_threshold(self.plan.sigma)
        return {
            "rater": "PE",
            **data,
            **self.plan.to_dict(),
            "k": self.ctx.plan.k,
            "threshold_H": threshold,
            "selection": self.ctx.plan.selection,
            "ledger": entries,
        }

    def _write(self) -> None:
        from fountain.run.manifest import Manifest

        manifest = Manifest.read(self.ctx.output_dir)
        if manifest is None:
            return  # the first engine round writes the manifest; privacy follows right after
        manifest.privacy = self.section() or manifest.privacy
        manifest.write(self.ctx.output_dir)
