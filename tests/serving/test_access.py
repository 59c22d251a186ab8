import pytest

from aigc.core.errors import UserError
from aigc.serving.access import KeyRing, RateLimiter, hash_key, new_key, read_key_file


def test_keys_are_known_by_name_and_only_their_hash_is_stored(tmp_path):
    alice, bob = new_key(), new_key()
    assert alice != bob and len(alice) > 40
    path = tmp_path / "keys.txt"
    path.write_text(f"# team keys\n{hash_key(alice)} alice\n\n{hash_key(bob)}  # no name\n")
    hashes = read_key_file(path)
    assert alice not in path.read_text()
    ring = KeyRing(hashes)
    assert ring.caller(alice) == "alice"
    assert ring.caller(bob) == hash_key(bob)[:8]  # unnamed keys are logged by their hash's prefix
    assert ring.caller(alice + "x") is None and ring.caller("") is None
    assert not ring.open and KeyRing({}).open


@pytest.mark.parametrize(
    "text, message",
    [("not-a-hash alice\n", "keys.txt:1: expected a 64-digit sha256 hex hash"), (None, "cannot read it")],
)
def test_bad_key_files_are_user_errors(tmp_path, text, message):
    path = tmp_path / "keys.txt"
    if text is not None:
        path.write_text(text)
    with pytest.raises(UserError, match=message):
        read_key_file(path)


def test_token_bucket_allows_a_burst_then_the_rate():
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("a") == pytest.approx(1.0)  # one token a second
    assert limiter.take("b") == 0  # buckets are per caller
    now[0] = 0.5
    assert limiter.take("a") == pytest.approx(0.5)
    now[0] = 1.0
    assert limiter.take("a") == 0
    now[0] = 100.0  # a long pause refills to the burst, no further
    assert [limiter.take("a") for _ in range(4)][-1] > 0


def test_refilled_buckets_are_forgotten_when_many_callers_come(monkeypatch):
    monkeypatch.setattr("aigc.serving.access.MAX_TRACKED", 3)
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=2, clock=lambda: now[0])
    for caller in "abc":
        limiter.take(caller)
    now[0] = 0.5
    limiter.take("d")  # a, b, c are half refilled: kept
    assert set(limiter.buckets) == set("abcd")
    now[0] = 5.0
    limiter.take("e")
    assert set(limiter.buckets) == {"e"}
    limiter.take("e"), limiter.take("e")
    assert limiter.take("e") > 0  # the limit itself is unchanged
