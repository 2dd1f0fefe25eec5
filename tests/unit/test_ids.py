"""Server-generated ids: the AgentState shape, never read as a command-line option, every character reachable."""

from stigmer.engine.ids import ALPHABET, BASE62, LENGTH, new_id


def test_ids_have_the_shape_and_never_start_like_an_option():
    ids = [new_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == LENGTH == 21 and set(i) <= set(ALPHABET) and i[0] in BASE62 for i in ids)
    assert set("".join(i[1:] for i in ids)) == set(ALPHABET)  # `-` and `_` do occur, after the first character
