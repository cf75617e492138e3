"""redis-py against a running Girder: the commands Girder serves, through the client most
Python services use. Usage: python3 redis_py_smoke.py PORT. Exits non-zero on the first
mismatch, printing what differed."""
import sys

import redis


def main(port: int) -> None:
    r = redis.Redis(host="127.0.0.1", port=port, db=3, decode_responses=True)
    assert r.ping() is True
    r.flushdb()
    assert r.set("greeting", "hello", ex=100) is True
    assert r.get("greeting") == "hello"
    assert 0 < r.ttl("greeting") <= 100
    assert r.set("greeting", "again", nx=True) is None
    assert r.incr("counter") == 1
    assert r.incrby("counter", 41) == 42
    assert r.incrbyfloat("float", 1.5) == 1.5
    assert r.mset({"a": "1", "b": "2"}) is True
    assert r.mget(["a", "b", "missing"]) == ["1", "2", None]
    assert r.append("a", "23") == 3
    assert r.getrange("a", 0, 1) == "12"
    assert sorted(r.keys("*")) == ["a", "b", "counter", "float", "greeting"]
    assert r.delete("a", "missing") == 1
    assert r.exists("a", "b") == 1
    assert r.rename("b", "c") is True
    assert r.type("c") == "string"
    assert r.expire("c", 50) is True and r.persist("c") is True
    assert r.dbsize() == 4

    # Pipelines, transactional off: one round trip, replies in order.
    pipe = r.pipeline(transaction=False)
    for i in range(500):
        pipe.set(f"k{i}", i)
    for i in range(500):
        pipe.get(f"k{i}")
    replies = pipe.execute()
    assert replies[:500] == [True] * 500
    assert replies[500:] == [str(i) for i in range(500)]

    # Transactions: MULTI/EXEC through a transactional pipeline, and optimistic locking.
    tx = r.pipeline(transaction=True)
    tx.set("tx", 1).incr("tx").lpush("txl", "a")
    assert tx.execute() == [True, 2, 1]
    with r.pipeline() as watched:
        watched.watch("tx")
        r.incr("tx")  # another write after WATCH
        watched.multi()
        watched.set("tx", 100)
        try:
            watched.execute()
            raise AssertionError("EXEC must abort after the watched key changed")
        except redis.WatchError:
            pass
    assert r.get("tx") == "3"

    # Errors surface as exceptions with Redis's text.
    try:
        r.incr("greeting")
        raise AssertionError("INCR on a non-integer must fail")
    except redis.ResponseError as e:
        assert str(e) == "value is not an integer or out of range", str(e)
    try:
        r.execute_command("NOSUCHCOMMAND")
        raise AssertionError("unknown commands must fail")
    except redis.ResponseError as e:
        assert str(e).startswith("unknown command 'NOSUCHCOMMAND'"), str(e)

    # Client naming and RESP3.
    r.client_setname("py-smoke")
    assert r.client_getname() == "py-smoke"
    r3 = redis.Redis(host="127.0.0.1", port=port, db=3, protocol=3, decode_responses=True)
    assert r3.get("greeting") == "hello"
    assert r3.incr("counter") == 43
    info = r3.info("server")
    assert info["redis_version"].startswith("7."), info
    r.flushdb()
    print("redis-py smoke: ok")


if __name__ == "__main__":
    main(int(sys.argv[1]))
