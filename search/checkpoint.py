"""A study's search checkpoint as data: JSON describing where the search was, never code.

The archive's ``states`` row of a study holds :class:`SearchState` as JSON (format name,
version, steps taken, validations paid, seed, evaluator settings key, tactic). A resumed search
does not load a pickled tactic: it replays the tactic from ``setup(problem,
default_rng(seed))`` while the archive serves the study's own evaluations back as already paid
(``search.runner``), so nothing written into a shared database can run code in a resuming
worker, and a refactor of a tactic's attributes does not break resuming old studies.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

STATE_FORMAT = "hwnas.search_state"
STATE_VERSION = 1


class StateError(ValueError):
    """A study's stored checkpoint is not a search state this version can read."""


@dataclass(frozen=True)
class SearchState:
    """Where a study's search was after its last finished step.

    Attributes:
        step: tactic steps finished.
        n_validated: validations charged to the budget after ``step`` steps.
        seed: seed of the tactic's ``numpy.random.Generator``.
        settings_key: the evaluator settings key the study's evaluations are stored under.
        tactic: the tactic's class name.
    """

    step: int
    n_validated: int
    seed: int
    settings_key: str
    tactic: str

    def to_json(self) -> bytes:
        """The state row's payload (UTF-8 JSON)."""
        payload = {"format": STATE_FORMAT, "version": STATE_VERSION, **asdict(self)}
        return json.dumps(payload, sort_keys=True).encode()

    @classmethod
    def from_json(cls, blob: bytes | str, study: str, url: str) -> SearchState:
        """Parse a state row; anything else is refused (and never unpickled).

        Raises:
            StateError: naming the study, the archive and the expected format.
        """
        types = {"step": int, "n_validated": int, "seed": int, "settings_key": str, "tactic": str}
        expected = (
            f"UTF-8 JSON with format={STATE_FORMAT!r}, version={STATE_VERSION} and keys "
            f"{sorted(types)}"
        )

        def refuse(why: str) -> StateError:
            return StateError(
                f"cannot resume study {study!r} in archive {url}: its checkpoint row {why}; "
                f"expected {expected}. The row is not loaded (a checkpoint is data, never code); "
                "start a new study, or delete the row to continue this one from its archived "
                "evaluations (replayed from step 0; those the replay does not re-see count as paid)"
            )

        raw = bytes(blob) if isinstance(blob, (bytes, bytearray, memoryview)) else blob
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
            data = json.loads(text)
        except (UnicodeDecodeError, ValueError):
            head = raw[:16] if isinstance(raw, bytes) else str(raw)[:16]
            kind = " (a pickle, as older versions wrote)" if head[:1] == b"\x80" else ""
            raise refuse(f"is not JSON{kind}: starts with {head!r}") from None
        if not isinstance(data, dict):
            raise refuse(f"holds JSON {type(data).__name__}, not an object")
        if data.get("format") != STATE_FORMAT or data.get("version") != STATE_VERSION:
            raise refuse(f"has format={data.get('format')!r}, version={data.get('version')!r}")
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k not in ("format", "version")}
        if set(values) != names:
            raise refuse(f"has keys {sorted(values)}")
        for key, kind in types.items():
            # bool is an int subclass: a flag where a count belongs is corrupt, not a count
            if not isinstance(values[key], kind) or isinstance(values[key], bool):
                raise refuse(f"has {key}={values[key]!r}, not a {kind.__name__}")
        return cls(**values)
