"""The X API emulator run by hand (`python -m tests.x_emulator`), as a tester trying the paid paths
does: it says where it listens, answers with the token it was given, and leaves out what it was
told is gone."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request

from tests.conftest import PROJECT_DIR

GONE = "1408876650968846337"  # a post of the recorded pages


def test_the_emulator_runs_from_a_shell_and_serves_the_recorded_posts_less_the_deleted(real_data):
    command = [sys.executable, "-m", "tests.x_emulator", "--token", "by-hand", "--pages"]
    command += [str(real_data / "v2-pages-twarc-network.jsonl"), "--delete", GONE]
    server = subprocess.Popen(command, cwd=PROJECT_DIR, stdout=subprocess.PIPE, text=True)
    try:
        settings = dict(server.stdout.readline().strip().split("=", 1) for _ in range(2))
        assert settings["X_BEARER_TOKEN"] == "by-hand"
        url = settings["DNFLOW_X_API_URL"]
        asked = urllib.request.Request(
            f"{url}/2/tweets?ids={GONE},1408871761727393794", headers={"Authorization": "Bearer by-hand"}
        )
        with urllib.request.urlopen(asked, timeout=10) as answer:
            body = json.load(answer)
        assert [post["id"] for post in body["data"]] == ["1408871761727393794"]
        assert [error["resource_id"] for error in body["errors"]] == [GONE]
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=10) == 0
