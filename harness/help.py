"""``python -m harness --help``: every key of the run's config with the comment that documents it.

Hydra's own help prints the composed config without its comments; ours prints the config files
the command line selects (``conf/config.yaml``, then the chosen ``algo``, ``env``, ``policy`` and
``experiment`` files, an algorithm's parent files first), as written, comments included.
Hydra's help stays available as ``--hydra-help``.
"""

from __future__ import annotations

from pathlib import Path

import yaml

CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = ("algo", "env", "policy", "experiment")
DEFAULTS = {"algo": "es", "env": "HalfCheetah", "policy": "linear"}


def choices(argv: list[str]) -> dict[str, str]:
    """Group choices from command-line tokens such as ``algo=vo`` or ``+experiment=x``."""
    chosen = dict(DEFAULTS)
    for token in argv:
        key, sep, value = token.lstrip("+").partition("=")
        if sep and key in GROUPS:
            chosen[key] = value
    return chosen


def group_files(group: str, option: str) -> list[Path]:
    """The files of ``group=option``: the option's own file after the same-group files its
    ``defaults`` list names (``vo`` -> ``es``, ``vo``)."""
    path = CONF / group / f"{option}.yaml"
    if not path.exists():
        return []
    parents = []
    data = yaml.safe_load(path.read_text()) or {}
    for entry in data.get("defaults", []) if isinstance(data, dict) else []:
        if isinstance(entry, str) and entry != "_self_" and (CONF / group / f"{entry}.yaml").exists():
            parents += group_files(group, entry)
    return [*parents, path]


def options(group: str) -> list[str]:
    """The options of config group ``group``: the names of ``conf/<group>/*.yaml``, sorted."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def help_text(argv: list[str]) -> str:
    """The help for the command line ``argv`` (without the program name)."""
    chosen = choices(argv)
    lines = [
        "usage: python -m harness [group=option ...] [key=value ...]     one run",
        "       python -m harness -m key=a,b [...]                        a sweep (Hydra multirun)",
        "       python -m harness -m +experiment=NAME                     a named sweep (experiments/)",
        "       python -m harness -m hydra/launcher=joblib [...]          jobs side by side (=slurm: as SLURM jobs)",
        "       python -m harness [overrides] --cfg job                   the composed config, resolved",
        "",
        "Config groups (group=option):",
        *(f"  {g:<10} {', '.join(options(g))}" for g in GROUPS),
        "",
        "Every key, as documented in the config files this command line selects "
        f"({', '.join(f'{g}={c}' for g, c in chosen.items())}):",
    ]
    files = [CONF / "config.yaml"]
    for group in GROUPS:
        if group in chosen:
            files += group_files(group, chosen[group])
    for path in files:
        lines += ["", f"# ===== {path.relative_to(CONF.parent)}", path.read_text().rstrip()]
    lines += ["", "Hydra's own help: python -m harness --hydra-help"]
    return "\n".join(lines) + "\n"
