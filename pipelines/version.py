"""segpipe's version, and the git commit when the code runs from a checkout."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pipelines.images import package_version

CODE_ROOT = Path(__file__).resolve().parents[1]


def git_commit(root: Path = CODE_ROOT) -> str | None:
    """``<short sha>`` (``-dirty`` with uncommitted changes) of the checkout at ``root``, or
    None when the code is not a git checkout (an installed wheel) or git is missing."""
    if not (root / ".git").exists():
        return None
    try:
        # --exclude='*': never a tag name, always the commit itself
        done = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty",
                               "--abbrev=12", "--exclude=*"],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def version_text() -> str:
    """``segpipe 0.1.0`` or ``segpipe 0.1.0 (git 1a2b3c4d5e6f-dirty)``."""
    commit = git_commit()
    return f"segpipe {package_version()}" + (f" (git {commit})" if commit else "")
