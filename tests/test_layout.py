from conftest import SEED, corpus_files


def test_seed_cassette_is_in_the_project() -> None:
    assert SEED.read_bytes().startswith(b"---\nversion: 2\ninteractions:\n")


def test_corpus_has_the_documented_size(corpus_dir) -> None:
    assert len(corpus_files()) == 299
