"""`fountain edge serve` refuses what it must before it opens a port: each refusal is exit 1 with a
message, never a traceback, and quotes no private text."""

from __future__ import annotations

import pytest

from edge_helpers import CANARY, owner_files
from fountain.cli import main


def serve(argv, capfd) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(["edge", "serve", *argv])
    return int(info.value.code), capfd.readouterr().err


def test_a_public_host_without_a_token_is_refused(tmp_path, capfd, monkeypatch):
    monkeypatch.delenv("FOUNTAIN_EDGE_TOKEN", raising=False)
    real = owner_files(tmp_path)
    code, err = serve(["--real-data", str(real), "--epsilon", "4", "--host", "0.0.0.0"], capfd)
    assert code == 1 and "without a token" in err and "FOUNTAIN_EDGE_TOKEN" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--epsilon", "inf"], "positive and finite"),
        (["--epsilon", "4", "--delta", "2"], "delta"),
        (["--epsilon", "4", "--tls-cert", "cert.pem"], "both a certificate and its key"),
    ],
)
def test_bad_settings_are_refused_with_a_message(tmp_path, capfd, extra, words):
    real = owner_files(tmp_path)
    code, err = serve(["--real-data", str(real), *extra], capfd)
    assert code == 1 and words in err


def test_broken_private_data_is_refused_without_quoting_it(tmp_path, capfd):
    real = owner_files(tmp_path)
    lines = real.read_text().splitlines()
    real.write_text("\n".join(lines[:2] + [lines[2][:-7]] + lines[3:]) + "\n")  # the canary's line, cut
    code, err = serve(["--real-data", str(real), "--epsilon", "4", "--state", str(tmp_path / "s")], capfd)
    assert code == 1 and "private.jsonl:3" in err and CANARY not in err
