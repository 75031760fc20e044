"""The client over TLS and mutual TLS, with certificates made by openssl at
test time."""

import os
import subprocess
import time

import pytest

from conftest import OBJECTIVES, _binary, free_port
from nasperf_client import Client, NasperfError

CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"), "-days", "1", "-subj", "/CN=nasperf test CA")
    for name, san in [("server", "DNS:localhost,IP:127.0.0.1"), ("client", "DNS:worker-1")]:
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"), "-subj", f"/CN={name}")
        (d / f"{name}.ext").write_text(f"subjectAltName={san}\n")
        openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
                "-CAcreateserial", "-out", str(d / f"{name}.pem"), "-days", "1", "-extfile", str(d / f"{name}.ext"))
    return d


def serve(models, tmp_path, pki, mutual: bool):
    port = free_port()
    args = [_binary(), "serve", "--listen", f"127.0.0.1:{port}", "--models", str(models),
            "--data-dir", str(tmp_path / "data"),
            "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key")]
    if mutual:
        args += ["--tls-client-ca", str(pki / "ca.pem")]
    process = subprocess.Popen(args, stderr=open(tmp_path / "server.log", "a"),
                               env={k: v for k, v in os.environ.items() if k != "NASPERF_SERVE_BENCH"})
    return process, f"localhost:{port}"


def predict_when_ready(client: Client) -> list:
    deadline = time.monotonic() + 60
    while True:
        try:
            return client.predict([CELL], objectives=OBJECTIVES[:1]).values
        except NasperfError as e:
            if e.code.name not in ("FAILED_PRECONDITION", "UNAVAILABLE") or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.parametrize("mutual", [False, True])
def test_tls_and_mutual_tls(models, tmp_path, pki, mutual):
    process, target = serve(models, tmp_path, pki, mutual)
    try:
        kwargs = {"tls_ca": pki / "ca.pem"}
        if mutual:
            kwargs.update(tls_cert=pki / "client.pem", tls_key=pki / "client.key")
        with Client(target, **kwargs) as client:
            assert predict_when_ready(client)[0][0] > 0
        # Plaintext to a TLS port fails, and so does TLS without a client
        # certificate when the server requires one.
        with Client(target, timeout=5) as plain:
            with pytest.raises(NasperfError):
                plain.predict([CELL])
        if mutual:
            with Client(target, tls_ca=pki / "ca.pem", timeout=5) as no_cert:
                with pytest.raises(NasperfError) as e:
                    no_cert.predict([CELL])
                assert e.value.code.name == "UNAVAILABLE"
    finally:
        process.kill()
        process.wait()
