"""Hand the operator the desk tokens ``serve --agent`` generated, without stdout.

Stdout ends up in journald, CI logs and terminal scroll-back; a desk token is
a key to callers' transcripts.  So tokens go to a file only this user can
read, and are printed only when asked for (``--print-tokens``).
"""

from __future__ import annotations

import os
from pathlib import Path


def write_token_file(path: Path, tokens: dict[str, str]) -> Path:
    """Write ``name=token`` lines to ``path`` with mode 0600 (replacing the file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.writelines(f"{name}={token}\n" for name, token in tokens.items())
    os.replace(tmp, path)
    return path
