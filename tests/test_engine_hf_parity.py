"""Hugging Face transformers is the reference (minGPT tests/test_huggingface_import.py): a random GPT-2 copied
key by key into our GPT computes the same logits, attention patterns and residual stream, and checkpoint
folders travel both ways between the two libraries."""
from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

from engine import GPT, GPTConfig, SamplingSettings, generate, load_pretrained, save_pretrained
from engine_fixtures import VOCAB, tokenizer

N_LAYER, N_HEAD, N_EMBD, BLOCK = 2, 2, 32, 16


def hf_config() -> GPT2Config:
    return GPT2Config(vocab_size=VOCAB, n_positions=BLOCK, n_embd=N_EMBD, n_layer=N_LAYER, n_head=N_HEAD,
                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
                      attn_implementation="eager")  # only eager attention returns the patterns


@pytest.fixture(scope="module")
def hf() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    model = GPT2LMHeadModel(hf_config()).eval()
    # GPT-2's init leaves biases at 0 and norms at 1, and makes attention almost uniform; perturb every
    # parameter so biases, norms and sharp attention patterns are all compared.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("ln_f.weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            else:
                p.normal_(0.0, 0.2 if "c_attn" in name else 0.05)
    return model


@pytest.fixture(scope="module")
def ours(hf) -> GPT:
    model = GPT(GPTConfig(block_size=BLOCK, vocab_size=VOCAB, n_layer=N_LAYER, n_head=N_HEAD, n_embd=N_EMBD))
    state = hf.state_dict()
    assert set(state) == set(model.state_dict())  # the same names, key by key (lm_head.weight is tied in both)
    model.load_state_dict(state, strict=True)
    assert model.lm_head.weight is model.transformer.wte.weight
    return model.eval()


@pytest.fixture(scope="module")
def idx() -> torch.Tensor:
    return torch.randint(1, VOCAB, (2, BLOCK), generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def hf_out(hf, idx):
    with torch.no_grad():
        return hf(idx, output_attentions=True, output_hidden_states=True)


def test_logits_match(ours, hf_out, idx):
    with torch.no_grad():
        fused, _ = ours(idx)
    explicit, _ = ours.run_with_cache(idx)
    torch.testing.assert_close(fused, hf_out.logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(explicit, hf_out.logits, atol=1e-4, rtol=1e-4)
    assert hf_out.logits.std() > 0.1  # the weights are not trivial


def test_loss_matches(ours, hf, idx):
    with torch.no_grad():
        theirs = hf(idx, labels=idx).loss  # transformers shifts the labels itself
        _, loss = ours(idx[:, :-1], idx[:, 1:])
    torch.testing.assert_close(loss, theirs, atol=1e-5, rtol=1e-5)


def test_attention_patterns_match(ours, hf_out, idx):
    _, cache = ours.run_with_cache(idx)
    assert len(hf_out.attentions) == N_LAYER
    for i, theirs in enumerate(hf_out.attentions):
        assert theirs is not None and theirs.shape == (2, N_HEAD, BLOCK, BLOCK)
        torch.testing.assert_close(cache[f"blocks.{i}.attn.hook_pattern"], theirs, atol=1e-5, rtol=1e-4)
    assert hf_out.attentions[0].max() > 0.5  # sharp patterns, not a near-uniform average


def test_residual_stream_matches_hidden_states(ours, hf_out, idx):
    _, cache = ours.run_with_cache(idx)
    hidden = hf_out.hidden_states
    assert len(hidden) == N_LAYER + 1
    for i in range(N_LAYER):
        torch.testing.assert_close(cache[f"blocks.{i}.hook_resid_pre"], hidden[i], atol=1e-5, rtol=1e-4)
    for i in range(N_LAYER - 1):
        torch.testing.assert_close(cache[f"blocks.{i}.hook_resid_post"], hidden[i + 1], atol=1e-5, rtol=1e-4)
    # transformers' last hidden state is taken after ln_f, not the last block's output.
    torch.testing.assert_close(cache["ln_final.hook_normalized"], hidden[N_LAYER], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(cache[f"blocks.{N_LAYER - 1}.hook_resid_post"], hidden[N_LAYER], atol=1e-3)


def test_our_folder_loads_in_transformers(ours, idx, tmp_path):
    folder = save_pretrained(ours, tokenizer(), tmp_path / "ours")
    theirs = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()
    assert isinstance(theirs, GPT2LMHeadModel)
    with torch.no_grad():
        expected, _ = ours(idx)
        torch.testing.assert_close(theirs(idx).logits, expected, atol=1e-4, rtol=1e-4)
    assert theirs.lm_head.weight.data_ptr() == theirs.transformer.wte.weight.data_ptr()


def test_a_transformers_folder_loads_in_ours(hf, hf_out, idx, tmp_path):
    folder = tmp_path / "theirs"
    hf.save_pretrained(folder)  # safetensors, as transformers saves by default
    tokenizer().save_pretrained(folder)
    assert (folder / "model.safetensors").is_file()
    assert not (folder / "pytorch_model.bin").exists()
    model, tok = load_pretrained(folder)
    assert not model.training
    with torch.no_grad():
        logits, _ = model(idx)
    torch.testing.assert_close(logits, hf_out.logits, atol=1e-4, rtol=1e-4)
    assert tok.encode("Tom was sad.") == tokenizer().encode("Tom was sad.")


def test_greedy_generation_matches(ours, hf):
    prompt = [0, 84, 111, 109]  # <|endoftext|> T o m
    n_new = 10
    mine = generate(ours, prompt, n_new, SamplingSettings(temperature=0))
    with torch.no_grad():
        out = hf.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                          max_new_tokens=n_new, do_sample=False, eos_token_id=None, pad_token_id=0)
    theirs = out[0, len(prompt):].tolist()
    assert len(mine) == len(theirs) == n_new
    assert mine == theirs
