"""The c2pa section on JPEGs signed here, offline, with a certificate chain generated here.

c2pa-rs checks the signing certificate against the C2PA certificate profile, so the end-entity certificate
carries: BasicConstraints CA=false, KeyUsage digitalSignature (critical), an ExtendedKeyUsage the profile allows
(emailProtection here; serverAuth or anyExtendedKeyUsage are refused), Subject and Authority Key Identifiers, an
ECDSA P-256 key signed with SHA-256 by a separate CA (a self-signed end entity is refused). The chain given to the
signer is end entity then CA; no timestamp authority (ta_url None), so nothing leaves the machine.
"""
from __future__ import annotations

import datetime
import http.server
import io
import json
import threading
import time
from pathlib import Path

import c2pa
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image

from forensics.evidence.provenance import content_credentials_section
from forensics.evidence.section import NO_INFORMATION, NO_SIGN, SUGGESTS_MANIPULATION

AI_SOURCE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
CAPTURE_SOURCE = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Forensics Test Org")])


def _key_usage(sign: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                         encipher_only=False, decipher_only=False)


@pytest.fixture(scope="module")
def chain() -> dict[str, bytes]:
    """A test CA and an ES256 end-entity certificate that c2pa-rs accepts for signing."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, ee_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    valid = dict(not_valid_before=now - datetime.timedelta(days=1), not_valid_after=now + datetime.timedelta(days=30))
    ca = (x509.CertificateBuilder(**valid).subject_name(_name("Forensics Test Root CA"))
          .issuer_name(_name("Forensics Test Root CA")).public_key(ca_key.public_key()).serial_number(1)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(_key_usage(sign=False, ca=True), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    ee = (x509.CertificateBuilder(**valid).subject_name(_name("Forensics Test Signer")).issuer_name(ca.subject)
          .public_key(ee_key.public_key()).serial_number(2)
          .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
          .add_extension(_key_usage(sign=True, ca=False), critical=True)
          .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ee_key.public_key()), critical=False)
          .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return {"chain": ee.public_bytes(pem) + ca.public_bytes(pem), "ca": ca.public_bytes(pem),
            "key": ee_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())}


def plain_jpeg() -> bytes:
    y, x = np.mgrid[0:96, 0:128]
    rgb = np.stack([x * 2, y * 2, (x + y) % 256], -1).astype(np.uint8)  # [96,128,3]
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def sign_jpeg(chain: dict[str, bytes], source_type: str, remote_url: str | None = None) -> bytes:
    manifest = {"claim_generator_info": [{"name": "forensics-test-generator", "version": "1.0"}],
                "title": "signed.jpg", "format": "image/jpeg",
                "assertions": [{"label": "c2pa.actions", "data": {"actions": [
                    {"action": "c2pa.created", "digitalSourceType": source_type}]}}]}
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain["chain"], chain["key"], None))
    context = c2pa.Context.from_dict({"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}})
    builder = c2pa.Builder(manifest, context=context)
    if remote_url:
        builder.set_no_embed()
        builder.set_remote_url(remote_url)
    out = io.BytesIO()
    builder.sign(signer, "image/jpeg", io.BytesIO(plain_jpeg()), out)
    return out.getvalue()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_signed_ai_jpeg_is_valid_untrusted_and_declares_ai(tmp_path: Path, chain: dict[str, bytes]) -> None:
    section = content_credentials_section(write(tmp_path, "ai.jpg", sign_jpeg(chain, AI_SOURCE)))
    f = section.fields
    assert f["state"] == "valid-untrusted" and "no C2PA trust list" in f["trust"]
    assert f["claim_generator"] == "forensics-test-generator 1.0"
    assert f["signer"]["common_name"] == "Forensics Test Signer" and f["signer"]["issuer"] == "Forensics Test Org"
    assert [a["action"] for a in f["actions"]] == ["c2pa.created"]
    assert f["actions"][0]["digital_source_type"] == "trainedAlgorithmicMedia"
    assert f["declares_ai_generation"] is True and f["validation_errors"] == []
    assert section.signal.stance == SUGGESTS_MANIPULATION and "AI generation" in section.signal.reason
    json.dumps(f)


def test_signed_capture_is_no_sign_and_trusted_with_the_ca_as_anchor(tmp_path: Path, chain: dict[str, bytes]) -> None:
    path = write(tmp_path, "capture.jpg", sign_jpeg(chain, CAPTURE_SOURCE))
    untrusted = content_credentials_section(path)
    assert untrusted.fields["declares_ai_generation"] is False
    assert untrusted.signal.stance == NO_SIGN and "Forensics Test Signer" in untrusted.signal.reason
    trusted = content_credentials_section(path, trust_anchors_pem=chain["ca"].decode())
    assert trusted.fields["state"] == "valid-trusted" and trusted.signal.stance == NO_SIGN


def test_altered_pixel_data_is_invalid(tmp_path: Path, chain: dict[str, bytes]) -> None:
    data = bytearray(sign_jpeg(chain, CAPTURE_SOURCE))
    start_of_scan = data.rfind(b"\xff\xda")  # the entropy-coded pixel data follows the last SOS marker
    data[start_of_scan + 100] ^= 0x55
    section = content_credentials_section(write(tmp_path, "altered.jpg", bytes(data)))
    f = section.fields
    assert f["state"] == "invalid"
    assert "assertion.dataHash.mismatch" in {e["code"] for e in f["validation_errors"]}
    assert section.signal.stance == SUGGESTS_MANIPULATION and "altered after signing" in section.signal.reason


def test_plain_jpeg_is_none_and_says_a_missing_manifest_proves_nothing(tmp_path: Path) -> None:
    section = content_credentials_section(write(tmp_path, "plain.jpg", plain_jpeg()))
    assert section.fields["state"] == "none" and "proves nothing" in section.fields["note"]
    assert section.fields["actions"] == [] and section.fields["signer"] is None
    assert section.signal.stance == NO_INFORMATION


class _Listener:
    """A local HTTP server that records every request (the remote manifest URL points here)."""

    def __init__(self) -> None:
        hits = self.hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                hits.append(self.path)
                self.send_error(404)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/manifest.c2pa"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_remote_manifest_is_reported_and_never_fetched(tmp_path: Path, chain: dict[str, bytes]) -> None:
    listener = _Listener()
    try:
        data = sign_jpeg(chain, AI_SOURCE, remote_url=listener.url)
        section = content_credentials_section(write(tmp_path, "remote.jpg", data))
        time.sleep(0.3)
        assert listener.hits == []
        assert section.fields["state"] == "remote-not-fetched" and section.fields["remote_url"] == listener.url
        assert section.signal.stance == NO_INFORMATION
        # Positive control: the same file read with remote fetching on does reach the listener, so it is the
        # offline setting that stops the fetch (c2pa ignores setting keys it does not know).
        with pytest.raises(c2pa.C2paError):
            c2pa.Reader("image/jpeg", io.BytesIO(data), None,
                        c2pa.Context.from_dict({"verify": {"remote_manifest_fetch": True}}))
        time.sleep(0.3)
        assert listener.hits == ["/manifest.c2pa"]
    finally:
        listener.close()


def test_unsupported_and_unreadable_files(tmp_path: Path) -> None:
    bmp = tmp_path / "image.bmp"
    Image.new("RGB", (8, 8)).save(bmp)
    assert content_credentials_section(bmp).fields["state"] == "unsupported-format"
    missing = content_credentials_section(tmp_path / "missing.jpg")
    assert missing.fields["state"] == "error" and "missing.jpg" in missing.fields["error"]
    garbage = content_credentials_section(write(tmp_path, "garbage.jpg", b"\xff\xd8\xff" + b"\x00" * 64))
    assert garbage.fields["state"] in ("none", "error") and garbage.signal.stance == NO_INFORMATION

