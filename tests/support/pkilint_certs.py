"""pkilint's CA/B Forum TLS BR linter (``lint_cabf_serverauth_cert``) over certificates.

``python tests/support/pkilint_certs.py [DIR]`` (``make lint-certs``) runs ``certflow demo``
in DIR (a temporary directory by default), lints every leaf certificate it installed and
exits 1 when a finding is about the validity period or key usage. Findings that exist only
because the local CA publishes no CRL, OCSP, AIA or certificate policies are listed as
expected (:data:`LOCAL_CA_ONLY`).
"""
from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[2])]  # run as a script: the project

from pkilint import finding_filter, loader  # noqa: E402
from pkilint.cabf import serverauth  # noqa: E402
from pkilint.pkix import certificate  # noqa: E402

#: findings that come from what the local CA does not run (a CRL or OCSP service, an AIA
#: location) and does not assert (a certificate policy): a public CA has them
LOCAL_CA_ONLY = frozenset({
    "cabf.serverauth.subscriber.revocation_information_absent",
    "msft.end_entity.revocation_information_absent",
    "cabf.serverauth.subscriber.authority_info_access_extension_absent",
    "cabf.serverauth.subscriber.certificate_policies_extension_absent",
})
#: words in a finding code that make it about the validity period or key usage
FORBIDDEN_TOPICS = ("validity", "key_usage", "keyusage", "digitalsignature", "keyencipherment",
                    "key_agreement", "keyagreement")


@dataclass(frozen=True)
class Finding:
    validator: str
    code: str
    severity: str

    @property
    def forbidden(self) -> bool:
        return any(topic in self.code.lower() for topic in FORBIDDEN_TOPICS)


def lint(pem: bytes, name: str = "certificate") -> list[Finding]:
    """Every finding of ``lint_cabf_serverauth_cert lint --detect`` on one PEM certificate."""
    cert = loader.load_pem_certificate(pem.decode("ascii"), name)
    cert_type = serverauth.determine_certificate_type(cert)
    validator = certificate.create_pkix_certificate_validator_container(
        serverauth.create_decoding_validators(), serverauth.create_validators(cert_type))
    results, _ = finding_filter.filter_results(
        serverauth.create_serverauth_finding_filters(cert_type), validator.validate(cert.root))
    return [Finding(type(result.validator).__name__, desc.finding.code, str(desc.finding.severity))
            for result in results for desc in result.finding_descriptions]


def demo_leaves(directory: Path) -> list[Path]:
    """Run ``certflow demo`` in ``directory``; the leaf certificates it installed."""
    from workflow.ops.demo import run_demo
    with contextlib.redirect_stdout(io.StringIO()):
        run_demo(directory)
    return sorted((directory / "var" / "servers").rglob("cert.pem"))


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(argv[0]) if argv else Path(scratch) / "demo"
        bad = 0
        for path in demo_leaves(directory):
            findings = lint(path.read_bytes(), str(path))
            print(path.relative_to(directory))
            for f in findings:
                note = "expected: local CA" if f.code in LOCAL_CA_ONLY else \
                    "VALIDITY/KEY USAGE" if f.forbidden else ""
                print(f"    {f.severity:<8} {f.code}  {note}")
                bad += f.forbidden
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
