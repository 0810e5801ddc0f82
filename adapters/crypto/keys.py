"""Private keys, CSRs and the vault that keeps keys encrypted at rest (``cryptography``).

- :func:`generate_key` / :func:`make_csr`: the provider-made key and CSR of full-service plans.
- :func:`check_customer_csr`: the CSR an application-only customer brings, checked before
  anything is stored.
- :class:`KeyVault`: Fernet encryption under a master key read from the environment or
  from a 0600 file; the key never shows in a repr or a message.
"""
from __future__ import annotations

import base64
import os
import shlex
import stat
import tempfile

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import NameOID

from adapters.base import BadInput, DistinguishedName
from adapters.common.spki import same_public_key
from adapters.common.names import a_label

ALGORITHMS = ("rsa2048", "rsa3072", "rsa4096", "p256", "p384")
ACCEPTED_HASHES = ("sha256", "sha384", "sha512")
ACCEPTED_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384"}
MIN_RSA_BITS = 2048
MASTER_KEY_ENV = "CERTFLOW_MASTER_KEY"
#: a Fernet key is 44 characters; a longer file is no master key (and is not read whole)
MASTER_KEY_CAP = 4096


# --- keys and CSRs ------------------------------------------------------------------


def generate_key(algorithm: str = "rsa2048") -> bytes:
    """A new private key as unencrypted PKCS#8 PEM (encrypt it with a KeyVault to store it)."""
    if algorithm.startswith("rsa") and algorithm in ALGORITHMS:
        key = rsa.generate_private_key(public_exponent=65537, key_size=int(algorithm[3:]))
    elif algorithm == "p256":
        key = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == "p384":
        key = ec.generate_private_key(ec.SECP384R1())
    else:
        raise BadInput("keys.algorithm",
                       f"unknown key algorithm {algorithm!r}: use one of {', '.join(ALGORITHMS)}",
                       algorithm=algorithm)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_key(key_pem: bytes):
    """Load a PEM private key; the message never carries the key."""
    try:
        return serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise BadInput("private_key", "not an unencrypted PEM private key") from exc


def _subject(dn: DistinguishedName, common_name: str) -> x509.Name:
    parts = [
        ("country", NameOID.COUNTRY_NAME, dn.country),
        ("prefecture", NameOID.STATE_OR_PROVINCE_NAME, dn.prefecture),
        ("locality", NameOID.LOCALITY_NAME, dn.locality),
        ("organization", NameOID.ORGANIZATION_NAME, dn.organization),
        ("unit", NameOID.ORGANIZATIONAL_UNIT_NAME, dn.unit),
        ("common_name", NameOID.COMMON_NAME, common_name),
    ]
    attributes = []
    for field, oid, value in parts:
        if not value:
            continue
        try:
            attributes.append(x509.NameAttribute(oid, value))
        except ValueError as exc:  # e.g. a country that is not two letters, CN over 64
            raise BadInput(field, f"{field} {value!r} cannot go in a CSR: {exc}",
                           value=value) from exc
    return x509.Name(attributes)


def make_csr(key_pem: bytes, dn: DistinguishedName, names: tuple[str, ...]) -> str:
    """A CSR (PEM) for ``key_pem``: subject C, ST, L, O, OU, CN=names[0], SAN = every name.

    Signed with SHA-256 (SHA-384 for a P-384 key).
    """
    if not names:
        raise BadInput("names", "a CSR needs at least one name")
    labels = [a_label(n) for n in names]
    key = load_private_key(key_pem)
    digest = hashes.SHA384() if (isinstance(key, ec.EllipticCurvePrivateKey)
                                 and key.curve.name == "secp384r1") else hashes.SHA256()
    builder = (x509.CertificateSigningRequestBuilder()
               .subject_name(_subject(dn, labels[0]))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in labels]),
                              critical=False))
    csr = builder.sign(key, digest)
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def public_key_matches(key_pem: bytes, cert_pem: str) -> bool:
    """True when the certificate carries the public half of ``key_pem``."""
    key = load_private_key(key_pem)
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
    except ValueError as exc:
        raise BadInput("certificate", "not a PEM certificate") from exc
    return same_public_key(cert.public_key(), key.public_key())


def load_csr(data: bytes | str) -> x509.CertificateSigningRequest:
    """Parse a CSR given as PEM or DER."""
    raw = data.encode("ascii", "replace") if isinstance(data, str) else bytes(data)
    try:
        if b"-----BEGIN" in raw:
            return x509.load_pem_x509_csr(raw)
        return x509.load_der_x509_csr(raw)
    except x509.InvalidVersion as exc:
        raise BadInput("csr", "CSR version is not 1 (PKCS #10 knows only v1)") from exc
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise BadInput("csr", "not a PEM or DER CSR") from exc


def csr_names(csr: x509.CertificateSigningRequest) -> tuple[str, ...]:
    """CN first (when present), then the SAN DNS names not already listed, as A-labels."""
    found: list[str] = []
    try:
        for attribute in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
            found.append(a_label(str(attribute.value), "csr"))
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        found += [a_label(n, "csr") for n in san.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        pass
    except BadInput:
        raise
    except ValueError as exc:  # a damaged extension (cryptography parses them lazily)
        raise BadInput("csr", f"CSR extensions cannot be read: {exc}") from None
    return tuple(dict.fromkeys(found))


def _check_hash(csr: x509.CertificateSigningRequest) -> None:
    try:
        digest = csr.signature_hash_algorithm
    except UnsupportedAlgorithm as exc:
        raise BadInput("csr", "CSR signature algorithm not supported: use SHA-256") from exc
    oid = csr.signature_algorithm_oid
    name = digest.name if digest is not None else getattr(oid, "_name", oid.dotted_string)
    if name not in ACCEPTED_HASHES:
        raise BadInput("csr", f"CSR signature algorithm {name} refused: use SHA-256",
                       algorithm=name)


def _check_key(csr: x509.CertificateSigningRequest) -> None:
    try:
        key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise BadInput("csr", "CSR public key type not supported: use RSA 2048 or ECDSA P-256") \
            from exc
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise BadInput("csr", f"CSR key RSA {key.key_size} bits refused: use RSA 2048 or more",
                           key_size=key.key_size)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ACCEPTED_CURVES:
            raise BadInput("csr", f"CSR key curve {key.curve.name} refused: use ECDSA P-256 or P-384",
                           curve=key.curve.name)
    else:
        raise BadInput("csr", f"CSR key type {type(key).__name__} refused: "
                              "use RSA 2048 or ECDSA P-256/P-384")


def _subj_value(value: str) -> str:
    # openssl -subj: a backslash escapes the characters that separate types and values
    return "".join("\\" + ch if ch in "\\/+=" else ch for ch in value)


def csr_command(names: tuple[str, ...], dn: DistinguishedName | None = None, *,
                with_sans: bool = True, key_file: str = "new2.pem",
                csr_file: str = "new2.csr") -> str:
    """The provider's ``openssl req -new -sha256 -key new2.pem -out new2.csr``, made
    non-interactive: the subject from ``dn`` (CN = names[0]) and, ``with_sans``, every
    name as a SAN, which a CA that takes the names from the CSR (ACME) needs."""
    labels = [a_label(n) for n in names]
    parts = [] if dn is None else [("C", dn.country), ("ST", dn.prefecture), ("L", dn.locality),
                                   ("O", dn.organization), ("OU", dn.unit)]
    subject = "".join(f"/{kind}={_subj_value(v)}" for kind, v in parts if v) + f"/CN={labels[0]}"
    command = f"openssl req -new -sha256 -key {key_file} -out {csr_file} -subj {shlex.quote(subject)}"
    if with_sans:
        command += " -addext " + shlex.quote("subjectAltName=" + ",".join(f"DNS:{n}" for n in labels))
    return command


def _other_san_kinds(csr: x509.CertificateSigningRequest) -> list[str]:
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    except ValueError as exc:
        raise BadInput("csr", f"CSR extensions cannot be read: {exc}") from None
    kinds = {x509.IPAddress: "IP address", x509.RFC822Name: "e-mail address",
             x509.UniformResourceIdentifier: "URI", x509.DirectoryName: "directory name",
             x509.OtherName: "other name", x509.RegisteredID: "registered ID"}
    return sorted({label for kind, label in kinds.items() if san.get_values_for_type(kind)})


def _check_names(csr: x509.CertificateSigningRequest, names: tuple[str, ...],
                 names_from_application: bool) -> None:
    others = _other_san_kinds(csr)
    if others:
        raise BadInput("csr", f"CSR carries {' and '.join(others)} SANs: a server certificate "
                              "names DNS host names only", kinds=tuple(others))
    order = [a_label(n) for n in names]
    carried = csr_names(csr)
    if not carried:
        raise BadInput("csr", "CSR carries no common name and no SAN")
    extra = sorted(set(carried) - set(order))
    if extra:
        raise BadInput("csr", "CSR names not in the order: " + ", ".join(extra), extra=tuple(extra))
    if names_from_application:
        # the CA issues for the order's names: the CSR must at least name the common name
        if order[0] not in carried:
            raise BadInput("csr", f"CSR does not name the order's common name {order[0]}",
                           missing=(order[0],))
        return
    missing = [n for n in order if n not in carried]
    if missing:
        raise BadInput("csr", f"CSR lacks {', '.join(missing)}, which the CA needs in the CSR; "
                              f"make it with: {csr_command(tuple(order))}", missing=tuple(missing))


def check_customer_csr(data: bytes | str, names: tuple[str, ...], *,
                       names_from_application: bool) -> str:
    """Check a customer's CSR (PEM or DER) for an order with ``names``; return it as PEM.

    Refusals raise ``BadInput(field="csr")`` naming the problem: unparsable, weak hash,
    weak key, bad signature, IP or e-mail SANs, names not in the order; and, unless the
    CA takes the names from the application (``names_from_application``: a CSR naming
    only the common name will do), names of the order the CSR lacks, with the openssl
    command that makes an acceptable one. Names compare case-insensitively.
    ``names_from_application`` has no default: pass the configured CA's ability.
    """
    csr = load_csr(data)
    _check_hash(csr)
    _check_key(csr)
    try:
        valid = csr.is_signature_valid
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        valid = False
    if not valid:
        raise BadInput("csr", "CSR signature does not verify")
    _check_names(csr, names, names_from_application)
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


# --- the vault ----------------------------------------------------------------------


class KeyVault:
    """Encrypts private keys at rest with Fernet (AES-128-CBC + HMAC-SHA256).

    The master key comes from ``$CERTFLOW_MASTER_KEY`` or a file of mode 0600
    (:meth:`load`); :meth:`create_file` makes one. The key is never shown.
    """

    def __init__(self, master_key: bytes | str) -> None:
        raw = master_key.encode("ascii", "replace") if isinstance(master_key, str) else master_key
        raw = raw.strip()
        try:
            self._fernet = Fernet(raw)
        except (ValueError, TypeError) as exc:
            raise BadInput("master_key",
                           "master key is not valid: expected 32 bytes in url-safe base64 "
                           "(make one with certflow init)") from exc
        self._master_key = raw

    def __repr__(self) -> str:
        return "KeyVault(master_key=<hidden>)"

    __str__ = __repr__

    @staticmethod
    def new_master_key() -> bytes:
        """A new random master key (url-safe base64, 32 bytes of entropy)."""
        return Fernet.generate_key()

    def encrypt(self, pem: bytes) -> bytes:
        """Encrypt a private key (or any secret) for storage."""
        return self._fernet.encrypt(pem)

    def decrypt(self, blob: bytes) -> bytes:
        """Decrypt what :meth:`encrypt` made; a different master key is refused."""
        try:
            return self._fernet.decrypt(blob)
        except (InvalidToken, TypeError, ValueError) as exc:
            raise BadInput("master_key",
                           "cannot decrypt a stored key: the master key is not the one "
                           "that encrypted it, or the data is damaged") from exc

    def derive(self, purpose: str, length: int = 32) -> bytes:
        """A secret derived from the master key for one ``purpose`` (HKDF-SHA256)."""
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=None,
                    info=b"certflow " + purpose.encode()).derive(base64.urlsafe_b64decode(
                        self._master_key))

    @classmethod
    def load(cls, path: str | None, env: str = MASTER_KEY_ENV) -> "KeyVault":
        """The vault from ``$env`` if set, else from the file at ``path`` (mode 0600 only)."""
        from_env = os.environ.get(env, "").strip()
        if from_env:
            return cls(from_env.encode("ascii", "replace"))
        if not path:
            raise BadInput("master_key", f"no master key: set {env} or give a master key file "
                                         "(certflow init makes one)")
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError as exc:
            raise BadInput("master_key", f"master key file {path} not found "
                                         "(certflow init makes one)", path=path) from exc
        except OSError as exc:
            raise BadInput("master_key", f"cannot open master key file {path}: {exc.strerror}",
                           path=path) from exc
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise BadInput("master_key", f"master key {path} is not a regular file", path=path)
        with os.fdopen(fd, "rb") as handle:
            mode = stat.S_IMODE(info.st_mode)
            if mode & 0o077:
                raise BadInput("master_key",
                               f"master key file {path} has mode {mode:04o}: it must be 0600 "
                               f"(chmod 600 {path})", path=path, mode=mode)
            return cls(handle.read(MASTER_KEY_CAP))

    @classmethod
    def create_file(cls, path: str) -> "KeyVault":
        """Write a new master key to ``path`` (mode 0600 from its first byte); refuse to
        overwrite one, since every key it encrypted would be lost. Returns the vault."""
        if os.path.lexists(path):
            raise BadInput("master_key", f"master key file {path} already exists", path=path)
        key = cls.new_master_key()
        directory = os.path.dirname(os.path.abspath(path))
        # mkstemp creates the file 0600; link() publishes it whole and fails if one appeared.
        fd, tmp = tempfile.mkstemp(prefix=".master-key-", dir=directory)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, key + b"\n")
            os.fsync(fd)
            os.close(fd)
            fd = -1
            try:
                os.link(tmp, path)
            except FileExistsError as exc:
                raise BadInput("master_key", f"master key file {path} already exists",
                               path=path) from exc
        finally:
            if fd >= 0:
                os.close(fd)
            os.unlink(tmp)
        return cls(key)
