import pytest
import torch

from syllabus.model import Phi

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("config", ["tiny", "odd", "full-rotary"])
def test_logits_match_transformers(config, random_model):
    model = random_model(config)
    hf = model.to_hf()
    x = torch.randint(0, model.config.vocab_size, (3, 40))
    mask = torch.ones_like(x)
    mask[0, :7] = 0
    with torch.no_grad():
        assert (model(x) - hf(x).logits).abs().max() <= 1e-4
        padded = model(x, attention_mask=mask) - hf(x, attention_mask=mask).logits
        assert padded[:, 7:].abs().max() <= 1e-4 and padded[1:].abs().max() <= 1e-4


@pytest.mark.parametrize("config", ["tiny", "odd"])
def test_round_trip_is_bit_exact(config, tmp_path, random_model):
    model = random_model(config)
    back = Phi.from_hf(model.to_hf())
    exported = model.to_hf(tmp_path / "hf", eot_id=5)
    assert exported.config.eos_token_id == exported.generation_config.eos_token_id == 5
    from_dir = Phi.from_hf(tmp_path / "hf")
    via_pretrained = Phi.from_pretrained(tmp_path / "hf")
    assert back.config.to_dict() | {"name": model.config.name} == model.config.to_dict()
    for k, v in model.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
        assert torch.equal(from_dir.state_dict()[k], v), k
        assert torch.equal(via_pretrained.state_dict()[k], v), k
