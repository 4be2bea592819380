import numpy as np
import pytest
import torch

from cloak.emodb import SPEAKERS
from cloak.metrics import accuracy, confusion, recalls, uar
from cloak.model import ModelError, load_checkpoint, save_checkpoint
from cloak.train import TrainConfig, extract_features, predict_proba, speaker_folds, train_cnn


def test_metrics_known_values():
    y, p = [0, 0, 0, 0, 1, 2], [0, 0, 0, 1, 1, 0]
    assert accuracy(y, p) == pytest.approx(4 / 6)
    assert recalls(y, p, 3).tolist() == pytest.approx([0.75, 1.0, 0.0])
    assert uar(y, p, 3) == pytest.approx((0.75 + 1.0 + 0.0) / 3)
    assert confusion(y, p, 3).tolist() == [[3, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert uar([0, 0], [0, 0], 7) == 1.0  # absent classes do not count


def test_speaker_folds_partition_and_mix_sexes():
    folds = speaker_folds(sorted(SPEAKERS), 5)
    assert sorted(s for f in folds for s in f) == sorted(SPEAKERS)
    assert all({SPEAKERS[s][0] for s in f} == {"f", "m"} for f in folds)
    assert len(speaker_folds(sorted(SPEAKERS), 10)) == 10


@pytest.fixture(scope="module")
def small(emodb):
    utts = emodb[::27]
    return utts, extract_features(utts)


def test_training_is_deterministic_and_learns(small):
    utts, feats = small
    cfg = TrainConfig(epochs=3, batch_size=8, seed=3)
    a = train_cnn(feats, [u.label for u in utts], cfg)
    b = train_cnn(feats, [u.label for u in utts], cfg)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    c = train_cnn(feats, [u.label for u in utts], TrainConfig(epochs=3, batch_size=8, seed=4))
    assert not torch.equal(a.head[1].weight, c.head[1].weight)
    probs = predict_proba(a, feats)
    assert probs.shape == (len(utts), 7) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_checkpoint_roundtrip_and_checksum(small, tmp_path):
    utts, feats = small
    cnn = train_cnn(feats, [u.label for u in utts], TrainConfig(epochs=1, batch_size=8))
    path = tmp_path / "m.pt"
    save_checkpoint(cnn, path, meta={"note": "test"})
    loaded, meta = load_checkpoint(path)
    assert meta == {"note": "test"}
    assert np.allclose(predict_proba(loaded, feats), predict_proba(cnn, feats), atol=1e-6)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum"):
        load_checkpoint(path)


def test_shipped_model_is_small_and_verified():
    from cloak.model import default_model_path

    path = default_model_path()
    assert path.stat().st_size < 20 * 2**20
    _, meta = load_checkpoint(path)
    assert meta["held_out_speakers"] == ["03", "08"] and "03" not in meta["train_speakers"]
