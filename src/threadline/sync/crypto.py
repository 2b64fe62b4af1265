"""Optional end-to-end encryption of journal blocks with age (pyrage).

`[sync] recipients` lists age public keys (`age1...`, or `ssh-ed25519 ...`/`ssh-rsa ...`); each
block of records is encrypted to all of them, so the remote holds only ciphertext. To read other
machines' encrypted blocks, `[sync] identity` names a local age identity file (never synced).
Include your own machine's key among the recipients so every machine can read every block.
"""

from __future__ import annotations

import base64
import zlib
from pathlib import Path
from typing import Any

from threadline.sync.errors import SyncError


def _pyrage() -> Any:
    try:
        import pyrage
    except ImportError:  # pragma: no cover - a dependency; kept for a broken install
        raise SyncError("encryption needs the pyrage package (pip install pyrage)") from None
    return pyrage


def parse_recipients(keys: list[str]) -> list[Any]:
    pyrage = _pyrage()
    out = []
    for key in keys:
        text = key.strip()
        try:
            if text.startswith("age1"):
                out.append(pyrage.x25519.Recipient.from_str(text))
            elif text.startswith("ssh-"):
                out.append(pyrage.ssh.Recipient.from_str(text))
            else:
                raise ValueError
        except Exception:
            shown = text[:24] + ("..." if len(text) > 24 else "")
            raise SyncError(
                f"[sync] recipients: {shown!r} is not an age or ssh public key"
            ) from None
    return out


def load_identities(path: str | Path) -> list[Any]:
    """The identities (`AGE-SECRET-KEY-1...` lines) of an age identity file."""
    pyrage = _pyrage()
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise SyncError(f"{file}: cannot read the identity file ({exc.strerror})") from None
    identities = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("AGE-SECRET-KEY-"):
            try:
                identities.append(pyrage.x25519.Identity.from_str(line))
            except Exception:
                raise SyncError(f"{file}: holds a malformed age identity") from None
    if not identities:
        if "PRIVATE KEY" in text:
            try:
                return [pyrage.ssh.Identity.from_buffer(text.encode())]
            except Exception:
                raise SyncError(f"{file}: an ssh key pyrage cannot use") from None
        raise SyncError(f"{file}: no age identity in it")
    return identities


def encrypt_block(data: bytes, recipients: list[Any]) -> str:
    """Compressed, then encrypted to every recipient; base64 text for one journal line."""
    sealed = _pyrage().encrypt(zlib.compress(data, 6), recipients)
    return base64.b64encode(sealed).decode("ascii")


def decrypt_block(text: str, identities: list[Any]) -> bytes:
    """Raises ValueError when the block cannot be read with these identities."""
    pyrage = _pyrage()
    try:
        sealed = base64.b64decode(text, validate=True)
        return zlib.decompress(pyrage.decrypt(sealed, identities))
    except Exception as exc:
        raise ValueError(f"cannot decrypt a block ({exc})") from None
