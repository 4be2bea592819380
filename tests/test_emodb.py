import pytest

from cloak.emodb import EMOTIONS, DatasetError, checksum, parse_name, split, verify, WAV_SHA256


def test_parse_name():
    u = parse_name("03a01Fa.wav")
    assert (u.speaker, u.text_code, u.emotion, u.version, u.sex, u.age) == ("03", "a01", "happiness", "a", "m", 31)
    assert u.text == "Der Lappen liegt auf dem Eisschrank."
    assert u.label == EMOTIONS.index("happiness") and u.held_out


@pytest.mark.parametrize("name", ["03a01Fa.mp3", "99a01Fa.wav", "03z01Fa.wav", "03a01Xa.wav", "readme.wav"])
def test_parse_name_rejects(name):
    with pytest.raises(DatasetError):
        parse_name(name)


def test_official_copy_counts_and_split(emodb, emodb_root):
    assert len(emodb) == 535
    counts = {e: sum(u.emotion == e for u in emodb) for e in EMOTIONS}
    assert counts == {"anger": 127, "boredom": 81, "disgust": 46, "fear": 69, "happiness": 71, "sadness": 62, "neutral": 79}
    train, held = split(emodb)
    assert len(held) == 107 and {u.speaker for u in held} == {"03", "08"}
    assert len(train) == 428 and not {u.speaker for u in train} & {"03", "08"}


def test_checksum_matches_official(emodb_root):
    assert checksum(emodb_root) == WAV_SHA256
    verify(emodb_root)


def test_verify_rejects_incomplete(tmp_path):
    (tmp_path / "wav").mkdir()
    with pytest.raises(DatasetError, match="expected 535"):
        verify(tmp_path)
