import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from syllabus.errors import BadInput
from syllabus.model import KVCache, Phi, PhiConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def test_presets_match_the_paper():
    c = PhiConfig.preset("phi-1")
    assert (c.n_layer, c.n_embd, c.n_inner, c.n_head, c.head_dim, c.rotary_dim, c.vocab_size, c.block_size) == (
        24, 2048, 8192, 32, 64, 32, 51200, 2048)
    s = PhiConfig.preset("phi-1-small")
    assert (s.n_layer, s.n_embd, s.n_inner, s.n_head, s.head_dim) == (20, 1024, 4096, 16, 64)
    with torch.device("meta"):
        assert 1.3e9 < Phi(c).num_params() < 1.45e9  # "phi-1, 1.3B parameters"
        assert 3.3e8 < Phi(s).num_params() < 3.7e8  # "phi-1-small, 350M"
    assert 2e6 < Phi(PhiConfig.preset("tiny")).num_params() < 1e7
    with pytest.raises(BadInput, match="unknown model preset 'phi-9'"):
        PhiConfig.preset("phi-9")
    with pytest.raises(BadInput, match="multiple of n_head"):
        PhiConfig.preset("tiny", n_head=3)


def test_attention_is_causal(random_model):
    model = random_model()
    x = torch.randint(0, 512, (2, 20))
    y = x.clone()
    y[:, 12:] = torch.randint(0, 512, (2, 8))
    with torch.no_grad():
        a, b = model(x), model(y)
    assert a.shape == (2, 20, 512)
    torch.testing.assert_close(a[:, :12], b[:, :12])
    assert not torch.allclose(a[:, 12:], b[:, 12:])


def test_kv_cache_decoding_matches_full_forward(random_model):
    model = random_model("odd")
    x = torch.randint(0, 300, (2, 16))
    cache = KVCache(model.config, batch_size=2, max_len=16)
    with torch.no_grad():
        full = model(x)
        steps = [model(x[:, :5], cache=cache), model(x[:, 5:9], cache=cache)]  # chunked prefill too
        steps += [model(x[:, t : t + 1], cache=cache) for t in range(9, 16)]
    assert cache.length == 16
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)


def test_left_padding_does_not_change_real_tokens(random_model):
    model = random_model()
    short, long = torch.randint(0, 512, (1, 6)), torch.randint(0, 512, (1, 10))
    batch = torch.cat([torch.cat([torch.zeros(1, 4, dtype=torch.long), short], 1), long])
    mask = torch.ones_like(batch)
    mask[0, :4] = 0
    with torch.no_grad():
        padded = model(batch, attention_mask=mask)
        torch.testing.assert_close(padded[0, 4:], model(short)[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(padded[1], model(long)[0], atol=1e-5, rtol=1e-5)
        assert torch.isfinite(padded).all()


def test_trains_with_dropout():
    torch.manual_seed(0)
    model = Phi(PhiConfig.preset("tiny", n_layer=1, vocab_size=64, embd_pdrop=0.1, attn_pdrop=0.1, resid_pdrop=0.1))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x = torch.randint(0, 64, (4, 33))
    losses = []
    for _ in range(12):
        logits = model(x[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.8
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x))  # dropout off in eval


def test_save_and_load_model_dir(tmp_path, random_model):
    model = random_model("odd")
    model.save_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["architecture"] == "syllabus-phi"
    loaded = Phi.from_pretrained(tmp_path / "m")
    assert loaded.config == model.config
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    assert all(p.requires_grad for p in loaded.parameters())


def test_bad_model_dirs_name_the_problem(tmp_path, random_model):
    model = random_model()
    model.save_pretrained(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    state = load_file(weights)
    state["layers.1.attn.extra.weight"] = torch.zeros(1)
    del state["layers.0.mlp.fc2.bias"]
    state["lm_head.bias"] = torch.zeros(7)
    save_file(state, weights)
    with pytest.raises(BadInput) as e:
        Phi.from_pretrained(tmp_path / "m")
    msg = e.value.line()
    assert "missing keys: layers.0.mlp.fc2.bias" in msg
    assert "unexpected keys: layers.1.attn.extra.weight" in msg
    assert "lm_head.bias (7,) vs (512,)" in msg

    (tmp_path / "m" / "config.json").write_text(json.dumps({"architecture": "gpt2"}))
    with pytest.raises(BadInput, match="expected architecture 'syllabus-phi'"):
        Phi.from_pretrained(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(BadInput, match="'llama' is not phi"):
        Phi.from_pretrained(tmp_path / "m")
    with pytest.raises(BadInput, match="no such model dir"):
        Phi.from_pretrained(tmp_path / "absent")
    (tmp_path / "m" / "config.json").write_text(json.dumps({"architecture": "syllabus-phi", "n_layers": 3}))
    with pytest.raises(BadInput, match="unknown model config keys: n_layers"):
        Phi.from_pretrained(tmp_path / "m")

