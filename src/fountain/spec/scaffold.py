"""``fountain init``: scaffold a new spec folder that validates as it is.

It writes a commented ``setup.yaml`` (Jinja prompts, every optional block shown with its default), a
small ``diagram.mermaid`` and a ``.gitignore`` for the output folder. It never overwrites a
non-empty ``setup.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fountain.errors import SpecError

SETUP_YAML = """\
# fountain spec. Every key is documented in docs/setup-yaml.md.
# Check it with:   fountain validate --target-folder {folder}
# Generate with:   fountain run --target-folder {folder}

category: bike repair            # label of the scene, written into every record
type: conversation               # conversation (multi-turn) | instruct (single pairs)

# Who speaks: entities of diagram.mermaid (beside this file).
user_role: {user_role}
assistant_role: {assistant_role}

# Prompts are Jinja templates. Variables: diagram, scene, entities, relations, notes, user_role,
# assistant_role, category, direction, direction_instructions, conversation, conversation_json,
# persona, output_format, delimiter, min_turns, max_turns, scenario.
initial_prompt: |
  Write a short conversation between a {{{{ user_role }}}} (the user) and a {{{{ assistant_role }}}} (the assistant).

  The scene:
  {{{{ scene }}}}
  {{% if persona %}}
  The user is {{{{ persona }}}}.
  {{% endif %}}

  {{{{ direction_instructions }}}}
  Write {{{{ min_turns }}}} to {{{{ max_turns }}}} turns; the user speaks first in each turn.
  Reply with JSON only, in exactly this shape:
  {{{{ output_format }}}}

derivational_prompt: |
  Here is a conversation between a {{{{ user_role }}}} (the user) and a {{{{ assistant_role }}}} (the assistant):
  {{{{ conversation_json }}}}

  The scene:
  {{{{ scene }}}}

  Continue it with 1 to {{{{ max_turns }}}} new turns. {{{{ direction_instructions }}}}
  Write only the new turns. Reply with JSON only, in exactly this shape:
  {{{{ output_format }}}}

output_format: '{{"conversations": [{{"user": "...", "assistant": "..."}}]}}'

# Directions: any word is a free style ("humorous", "formal"); named Evol-Instruct operations get
# their own instructions: general, add_constraints, deepen (in-depth), concretize,
# increase_reasoning, breadth (in-breadth).
seed_evolving_directions:
  - general
  - concretize
derivational_evolving_directions:
  - in-depth

# personas:                      # optional: each persona gets its own seed conversations
#   - a commuter who rides every day in the rain
# personas_file: personas.txt    # or one per line / JSONL with a "persona" field

generation:
  seeds_per_direction: 1
  derivations_per_direction: 1
  min_turns: 2
  max_turns: 4
  max_prefix_turns: 2            # derive from the first 1..2 turns of each seed
  # target: 100                  # stop once this many conversations are accepted
  # max_retries: 2               # re-asks after an invalid answer
  # mode: auto                   # json | turns | auto

model:                           # nothing set: the embedded local model
  # provider: openai             # local | openai | anthropic | gemini | fake
  # name: gpt-4o-mini
  # base_url: http://localhost:8000/v1   # any OpenAI-compatible server
  # api_key_env: OPENAI_API_KEY  # the NAME of the variable; never write a key here
  temperature: 0.7
  max_tokens: 512

output:
  folder: output                 # relative to this folder (ignored by .gitignore)
  format: messages               # messages | sharegpt | janus
  # system_message: You are a friendly bike mechanic.

# raters:                        # optional quality and privacy settings
#   rater: RF                    # PE (private evolution) | RF (real filter)
#   real_data: real.jsonl
# privacy:
#   epsilon: 4
"""

DIAGRAM = """\
erDiagram
    CUSTOMER {
        string bike "ten-year-old city bike"
        string problem "the gears slip under load"
    }
    MECHANIC {
        int years_of_experience "12"
        string shop "a small neighbourhood repair shop"
    }
    REPAIR {
        string status "diagnosis"
        int estimate_eur "40"
    }
    CUSTOMER ||--o{ REPAIR : "brings in"
    MECHANIC ||--o{ REPAIR : performs

    %% The mechanic asks about symptoms before guessing the cause.
    %% Cheap fixes come first; the mechanic gives a price before any work.
"""

GITIGNORE_LINE = "output/"


@dataclass(frozen=True)
class ScaffoldResult:
    """What ``init`` did: the files written and the files it left alone."""

    folder: Path
    written: tuple[Path, ...]
    kept: tuple[Path, ...]
    notes: tuple[str, ...] = ()


def init_spec(folder: str | Path) -> ScaffoldResult:
    """Create ``folder`` (if needed) with setup.yaml, diagram.mermaid and .gitignore.

    Raises SpecError when setup.yaml already exists and is not empty, or when ``folder`` is a file.
    An existing diagram.mermaid is kept; an existing .gitignore gets the output folder appended.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise SpecError(
            f"{folder} is a file, not a folder", location=str(folder), hint="give the path of a new or existing folder"
        )
    setup = folder / "setup.yaml"
    if setup.is_dir():
        raise SpecError(f"{setup} is a directory", location=str(setup), hint="remove or rename it first")
    if setup.exists() and setup.stat().st_size and setup.read_bytes().strip():
        raise SpecError(
            "setup.yaml already exists here; fountain init never overwrites a spec",
            location=str(setup),
            hint="choose a new folder, or move the existing setup.yaml away first",
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        written, kept, notes = [], [], []
        roles = ("CUSTOMER", "MECHANIC")
        diagram = folder / "diagram.mermaid"
        if diagram.exists() and diagram.read_bytes().strip():
            kept.append(diagram)
            roles, note = _roles_from(diagram, roles)
            notes.append(note)
        else:
            diagram.write_text(DIAGRAM, encoding="utf-8")
            written.append(diagram)
        setup.write_text(
            SETUP_YAML.format(folder=folder, user_role=roles[0], assistant_role=roles[1]), encoding="utf-8"
        )
        written.insert(0, setup)
        gitignore = folder / ".gitignore"
        existing = gitignore.read_text(encoding="utf-8") if gitignore.is_file() else ""
        if GITIGNORE_LINE not in existing.split():
            separator = "" if not existing or existing.endswith("\n") else "\n"
            gitignore.write_text(
                f"{existing}{separator}# fountain output (regenerate with fountain run)\n{GITIGNORE_LINE}\n",
                encoding="utf-8",
            )
            written.append(gitignore)
        else:
            kept.append(gitignore)
    except OSError as error:
        raise SpecError(
            f"cannot write the spec folder {folder}: {error.strerror or error}",
            location=str(folder),
            hint="check that the folder is writable",
        ) from None
    return ScaffoldResult(folder, tuple(written), tuple(kept), tuple(notes))


def _roles_from(diagram: Path, default: tuple[str, str]) -> tuple[tuple[str, str], str]:
    """Roles for a kept diagram: its first two entities, so that the new spec still validates."""
    from fountain.diagram import parse
    from fountain.errors import FountainError

    try:
        entities = parse(diagram.read_text(encoding="utf-8"), path=str(diagram)).entities
    except (FountainError, OSError, UnicodeDecodeError):
        return default, f"{diagram.name} does not parse yet: fix it, then set user_role and assistant_role"
    if len(entities) < 2:
        return default, f"{diagram.name} has fewer than two entities: set user_role and assistant_role"
    return (entities[0], entities[1]), (
        f"user_role {entities[0]} and assistant_role {entities[1]} are the "
        f"first two entities of {diagram.name}: swap or change them as needed"
    )
