"""certflow's SSH identity: made by ``certflow init``, its public half for authorized_keys.

The private key's passphrase comes from the environment variable named by
``[install.ssh] passphrase_env``, never from config. Messages name the file, never its
content.
"""
from __future__ import annotations

import os

import asyncssh
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adapters.base import BadInput

IDENTITY_FIELD = "install.ssh.identity"


def passphrase(env_name: str) -> str | None:
    return os.environ.get(env_name) or None if env_name else None


def create_identity(path: str, env_name: str, comment: str = "certflow") -> bool:
    """Make an Ed25519 key at ``path`` (0600, OpenSSH format, encrypted when the
    passphrase variable is set) and ``path.pub``; False when one is there already."""
    if os.path.exists(path):
        return False
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    secret = passphrase(env_name)
    encryption = (serialization.BestAvailableEncryption(secret.encode()) if secret
                  else serialization.NoEncryption())
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                             encryption)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # 0600 from its first byte
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        os.fchmod(out.fileno(), 0o600)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH)
    with open(path + ".pub", "wb") as out:
        out.write(public + f" {comment}\n".encode())
    return True


def load_identity(path: str, env_name: str) -> asyncssh.SSHKey:
    """The private key, decrypted; BadInput naming install.ssh.identity otherwise."""
    if not os.path.isfile(path):
        raise BadInput(IDENTITY_FIELD, f"{IDENTITY_FIELD} {path} does not exist (run "
                       "`certflow init --ssh-key` to make one)", path=path)
    try:
        return asyncssh.read_private_key(path, passphrase(env_name))
    except asyncssh.KeyEncryptionError:
        raise BadInput(IDENTITY_FIELD, f"{IDENTITY_FIELD} {path}: wrong passphrase "
                       f"(${env_name})", path=path) from None
    except (asyncssh.KeyImportError, ValueError) as exc:
        hint = f" (set ${env_name})" if "assphrase" in str(exc) else ""
        raise BadInput(IDENTITY_FIELD, f"{IDENTITY_FIELD} {path} cannot be read as an SSH "
                       f"private key{hint}", path=path) from None
    except OSError as exc:
        raise BadInput(IDENTITY_FIELD, f"{IDENTITY_FIELD} {path}: {exc.strerror}",
                       path=path) from None


def public_key_line(path: str, env_name: str) -> str:
    """``ssh-ed25519 AAAA... certflow`` for the servers' authorized_keys."""
    key = load_identity(path, env_name)
    return key.export_public_key("openssh").decode().split("\n")[0].strip()
