"""The edge's own privacy ledger, persisted in ``<state>/ledger.json``.

Every vote is charged here, and the file is replaced atomically (temporary file, fsync, rename,
fsync of the folder) BEFORE the vote's noise is drawn: a crash in between costs budget, it never
yields a fresh draw for free. The ledger outlives restarts; it is bound to one delta (a restart
with another delta is refused: the accounting would mix two guarantees).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from fountain.errors import FountainError, PrivacyBudgetError
from fountain.raters.privacy import PrivacyLedger, epsilon_for_mu, mu_for_epsilon

LEDGER_FILE = "ledger.json"
LEDGER_VERSION = 1


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ledger-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


class EdgeLedger:
    """The Gaussian-DP account of one edge: (epsilon_budget, delta), one entry per vote."""

    def __init__(self, state_dir: str | os.PathLike[str], *, epsilon_budget: float, delta: float):
        self.path = Path(state_dir) / LEDGER_FILE
        self.epsilon_budget = float(epsilon_budget)
        self.delta = float(delta)
        self._lock = threading.Lock()
        data = self._read()
        if data is None:
            data = {"version": LEDGER_VERSION, "edge_id": secrets.token_hex(8), "delta": self.delta, "votes": []}
            self._write(data)
        elif not math.isclose(float(data["delta"]), self.delta, rel_tol=1e-12):
            raise FountainError(
                f"the ledger in {self.path.parent} accounts for delta = {float(data['delta']):.4g}, "
                f"this service was started with delta = {self.delta:.4g}",
                location=str(self.path),
                hint="restart with the same --delta (and the same private data), or use a new --state folder "
                "for a new dataset",
            )
        self.edge_id = str(data["edge_id"])
        self.votes: list[dict[str, Any]] = list(data["votes"])
        self._account = PrivacyLedger(delta=self.delta)
        for vote in self.votes:
            self._account.record(float(vote["sigma"]))

    def _read(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as error:
            raise FountainError(f"cannot read the ledger: {error.strerror or error}", location=str(self.path)) from None
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("version") != LEDGER_VERSION:
                raise ValueError("unknown version")
            votes = data["votes"]
            if not isinstance(votes, list) or not all(float(v["sigma"]) > 0 for v in votes):
                raise ValueError("bad votes")
            float(data["delta"])
            str(data["edge_id"])
        except (ValueError, KeyError, TypeError) as error:
            raise FountainError(
                f"the ledger is damaged ({error}); refusing to start rather than forget spent budget",
                location=str(self.path),
                hint="restore it from a backup; deleting it would let the budget be spent twice",
            ) from None
        return data

    def _write(self, data: dict[str, Any]) -> None:
        try:
            _write_atomic(self.path, data)
        except OSError as error:
            raise FountainError(
                f"cannot write the ledger: {error.strerror or error}",
                location=str(self.path),
                hint="check the --state folder's permissions and free space",
            ) from None

    @property
    def epsilon(self) -> float:
        return self._account.epsilon

    @property
    def mu(self) -> float:
        return self._account.mu

    def votes_left(self, sigma: float) -> int:
        """How many more votes with noise ``sigma`` fit in the budget."""
        budget = self.epsilon_budget * (1 + 1e-9)

        def fits(n: int) -> bool:
            return epsilon_for_mu(math.sqrt(self.mu**2 + n / sigma**2), self.delta) <= budget

        mu_max = mu_for_epsilon(self.epsilon_budget, self.delta)
        count = max(0, math.floor((mu_max**2 - self.mu**2) * sigma**2))
        while count > 0 and not fits(count):
            count -= 1
        while fits(count + 1):
            count += 1
        return count

    def charge(self, sigma: float, **details: Any) -> dict[str, Any]:
        """Account one vote with noise ``sigma`` and persist it; raises PrivacyBudgetError (nothing
        charged) when the vote would exceed the budget. Call BEFORE drawing the noise."""
        with self._lock:
            after = self._account.preview(sigma)
            if after > self.epsilon_budget * (1 + 1e-9):
                raise PrivacyBudgetError(
                    f"this edge's privacy budget is spent: {len(self.votes)} vote(s) so far, epsilon = "
                    f"{self.epsilon:.4g}; one more would raise it to {after:.4g}, over the owner's budget "
                    f"epsilon = {self.epsilon_budget:.4g}",
                    hint="the data owner decides whether to grant more budget; the generator's run keeps "
                    "everything it made so far",
                )
            entry = {
                "vote": len(self.votes) + 1,
                "sigma": sigma,
                "epsilon": after,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                **details,
            }
            data = {"version": LEDGER_VERSION, "edge_id": self.edge_id, "delta": self.delta}
            self._write({**data, "votes": [*self.votes, entry]})
            # Only once the file holds it does the vote count in memory (and noise may be drawn).
            self.votes.append(entry)
            self._account.record(sigma)
            return entry

    def to_dict(self, sigma: float) -> dict[str, Any]:
        """GET /ledger: what has been spent, and what is left at the service's sigma."""
        return {
            "edge_id": self.edge_id,
            "accountant": "gaussian-dp",
            "delta": self.delta,
            "epsilon_budget": self.epsilon_budget,
            "epsilon": self.epsilon,
            "mu": None if math.isinf(self.mu) else self.mu,
            "sigma": sigma,
            "votes_left": self.votes_left(sigma),
            "votes": list(self.votes),
        }
