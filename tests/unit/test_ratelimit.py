"""The token bucket: capacity, continuous refill, remaining/reset/retry-after arithmetic."""

from __future__ import annotations

from stigmer.support.ratelimit import MemoryRateLimiter, client_ip, parse_networks


class Clock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


def test_capacity_then_refuse_then_refill():
    clock = Clock()
    rl = MemoryRateLimiter(clock)
    ds = [rl.hit("a", 120) for _ in range(121)]
    assert all(d.allowed for d in ds[:120]) and not ds[120].allowed
    assert [d.remaining for d in ds[:3]] == [119, 118, 117]
    assert ds[119].remaining == 0
    assert ds[120].retry_after == 1 and ds[120].reset == 1060
    clock.t += 0.5  # 120/min = 2 tokens/s -> 1 token
    d = rl.hit("a", 120)
    assert d.allowed and d.remaining == 0
    assert not rl.hit("a", 120).allowed


def test_reset_is_ceil_of_full_time_and_buckets_independent():
    clock = Clock(1000.2)
    rl = MemoryRateLimiter(clock)
    d = rl.hit("x", 60)  # 1 token/s, one used -> full in 1 s
    assert d.reset == 1002 and d.remaining == 59
    assert rl.hit("y", 60).remaining == 59
    for _ in range(59):
        rl.hit("x", 60)
    d = rl.hit("x", 60)
    assert not d.allowed and d.retry_after == 1
    clock.t += 10
    assert rl.hit("x", 60).remaining == 9


def test_slow_limits_give_long_retry_after():
    clock = Clock()
    rl = MemoryRateLimiter(clock)
    rl.hit("s", 1)
    d = rl.hit("s", 1)
    assert not d.allowed and d.retry_after == 60


def test_prune_forgets_old_buckets():
    clock = Clock()
    rl = MemoryRateLimiter(clock, prune_every=2)
    rl.hit("old", 10)
    clock.t += 7200
    rl.hit("new", 10)
    assert "old" not in rl._buckets


def test_client_ip():
    nets = parse_networks("127.0.0.1, 10.0.0.0/8")
    assert client_ip("127.0.0.1", "5.5.5.5", nets) == "5.5.5.5"
    assert client_ip("127.0.0.1", "5.5.5.5, 10.1.1.1", nets) == "5.5.5.5"
    assert client_ip("6.6.6.6", "5.5.5.5", nets) == "6.6.6.6"
    assert client_ip("127.0.0.1", "5.5.5.5", []) == "127.0.0.1"
