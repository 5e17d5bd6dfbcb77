"""How many server processes ``spokenword serve`` starts, and the port check before they start."""

from __future__ import annotations

import socket

import pytest

from spokenword.serve import workers


def test_auto_is_one_per_usable_cpu_up_to_the_cap(monkeypatch):
    monkeypatch.setattr(workers, "balanced", lambda: True)
    for cpus, expected in ((1, 1), (2, 2), (3, 3), (64, workers.MAX_AUTO_WORKERS)):
        monkeypatch.setattr(workers, "usable_cpus", lambda cpus=cpus: cpus)
        assert workers.worker_count(None) == expected


def test_auto_is_one_when_teaching_or_when_the_kernel_does_not_balance(monkeypatch):
    monkeypatch.setattr(workers, "usable_cpus", lambda: 8)
    monkeypatch.setattr(workers, "balanced", lambda: True)
    assert workers.worker_count(None, teaching=True) == 1
    monkeypatch.setattr(workers, "balanced", lambda: False)
    assert workers.worker_count(None) == 1


def test_an_asked_number_is_kept_or_refused_in_one_line(monkeypatch):
    monkeypatch.setattr(workers, "usable_cpus", lambda: 2)
    monkeypatch.setattr(workers, "balanced", lambda: True)
    assert workers.worker_count(6) == 6  # more than the CPUs: the user's choice
    assert workers.worker_count(1, teaching=True) == 1
    with pytest.raises(workers.WorkersError, match="--teach serves one process"):
        workers.worker_count(2, teaching=True)
    with pytest.raises(workers.WorkersError, match="at least 1"):
        workers.worker_count(0)
    monkeypatch.setattr(workers, "balanced", lambda: False)
    assert workers.worker_count(1) == 1
    with pytest.raises(workers.WorkersError, match="needs Linux"):
        workers.worker_count(2)


def test_a_port_in_use_is_refused_before_any_worker_starts():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(workers.WorkersError, match=f"cannot listen on 127.0.0.1:{port}.*--port"):
            workers.free_port("127.0.0.1", port)
    assert workers.free_port("127.0.0.1", 0) > 0  # 0: a free port, chosen once for every worker


@pytest.mark.skipif(not workers.balanced(), reason="SO_REUSEPORT balancing is Linux's")
def test_worker_sockets_share_one_port():
    port = workers.free_port("127.0.0.1", 0)
    first, second = workers.listening_socket("127.0.0.1", port), workers.listening_socket("127.0.0.1", port)
    try:
        assert first.getsockname()[1] == second.getsockname()[1] == port
    finally:
        first.close()
        second.close()


def test_a_container_cpu_quota_caps_the_usable_cpus(tmp_path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")  # docker run --cpus 1.5
    assert workers.quota_cpus(v2) == 2
    (v2 / "cpu.max").write_text("max 100000\n")
    assert workers.quota_cpus(v2) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("200000\n")
    assert workers.quota_cpus(v1) == 2
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")  # no quota
    assert workers.quota_cpus(v1) is None
    assert workers.quota_cpus(tmp_path / "none") is None
