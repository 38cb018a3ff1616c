import json
import math

import pytest

from fountain.cli import main
from fountain.raters.privacy import default_delta, epsilon_for


def _run(capsys, *args):
    with pytest.raises(SystemExit) as info:
        main(["privacy", *args])
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def test_sigma_prints_epsilon(capsys):
    code, out, _ = _run(capsys, "--sigma", "15.34", "--iterations", "10", "--n", "1939290")
    assert code == 0
    assert out.splitlines()[0] == "epsilon = 1.004"


def test_epsilon_prints_sigma_and_round_trips(capsys):
    code, out, _ = _run(capsys, "--epsilon", "3.34", "-T", "5", "--delta", "1e-5", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["sigma"] == pytest.approx(2 * math.sqrt(2), rel=0.01)
    assert data["delta"] == 1e-5 and data["iterations"] == 5
    assert epsilon_for(data["sigma"], 5, 1e-5) == pytest.approx(3.34, rel=1e-6)
    code, out, _ = _run(capsys, "--epsilon", "4", "-T", "5", "--n", "2000")
    assert code == 0 and out.startswith("sigma = ")


def test_json_with_sigma_uses_default_delta(capsys):
    code, out, _ = _run(capsys, "--sigma", "2", "-T", "3", "--n", "1000", "--json")
    data = json.loads(out)
    assert code == 0 and data["delta"] == pytest.approx(default_delta(1000))
    assert data["epsilon"] == pytest.approx(epsilon_for(2.0, 3, default_delta(1000)))
    assert data["mu"] == pytest.approx(math.sqrt(3) / 2)


@pytest.mark.parametrize(
    "args,needle",
    [
        (["-T", "5", "--n", "100"], "exactly one of"),
        (["--sigma", "1", "--epsilon", "1", "-T", "5", "--n", "100"], "exactly one of"),
        (["--sigma", "0", "-T", "5", "--n", "100"], "positive"),
        (["--epsilon", "-1", "-T", "5", "--n", "100"], "positive"),
        (["--epsilon", "inf", "-T", "5", "--n", "100"], "finite"),
        (["--sigma", "1", "-T", "0", "--n", "100"], "iterations"),
        (["--sigma", "1", "-T", "5"], "--n"),
        (["--sigma", "1", "-T", "5", "--delta", "1.5"], "between 0 and 1"),
        (["--sigma", "1", "-T", "5", "--n", "1"], "--n"),
    ],
)
def test_usage_errors_exit_2(capsys, args, needle):
    code, out, err = _run(capsys, *args)
    assert code == 2
    assert needle in err and "Traceback" not in err
