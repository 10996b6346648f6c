"""Edits in a forward pass (engine/model/hooks.py) and the interventions built on them (engine/intervene/):
ablation, steering, forcing a token, attribution. Each on our GPT, a GPT-2-family folder and transformers-run
families (Llama, GPT-Neo), against a reference computed another way: transformers' own forward with a plain
PyTorch hook, a loop of separate forward passes, or autograd on transformers' `inputs_embeds`."""
from __future__ import annotations

import threading

import pytest
import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

from engine.generation.sampling import SamplingSettings, generate
from engine.intervene.ablation import HEAD, MEAN, MLP, NEURON, ZERO, Ablation, ablation_edits, reference_means
from engine.intervene.attribution import attribute, gradient_x_input, leave_one_out
from engine.intervene.edited import Edited
from engine.intervene.effects import completion, effect, next_token_probs, text_loss
from engine.intervene.examples import HELDOUT_STORY, PAIRS, STEERING_SETS
from engine.intervene.forcing import branch, candidates
from engine.intervene.price import Refusal
from engine.intervene.steering import steering_edits, steering_vector
from engine.model.hf import load_model
from engine.model.hooks import Replace, editable
from engine.model.trace import encode_for_model
from engine_fixtures import VOCAB, save_tiny_hf, tokenizer

TEXT = "Once upon a time, Tom the cat found a red ball."
ATOL = 1e-4
SAMPLING = SamplingSettings(temperature=1.0)
FAMILIES = ["gpt2", "llama", "gpt_neo"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """(our loaded model, transformers' model of the same folder) for a GPT-2 folder, Llama and GPT-Neo."""
    root = tmp_path_factory.mktemp("intervene")
    out = {}
    for family in ("llama", "gpt_neo"):
        hf = save_tiny_hf(family, root / family, seed=2)
        out[family] = (load_model(root / family)[0], hf)
    torch.manual_seed(2)
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=2, n_head=4,
                                      bos_token_id=0, eos_token_id=0)).eval()
    gpt2.save_pretrained(str(root / "gpt2"))
    tokenizer().save_pretrained(str(root / "gpt2"))
    out["gpt2"] = (load_model(root / "gpt2")[0], gpt2)
    return out


def ids_of(model, text: str = TEXT) -> list[int]:
    return list(encode_for_model(tokenizer(), text, model.config.block_size)[0].ids)


# Where each transformers model keeps what our names edit: the heads' outputs side by side (the input of the
# attention output projection) and the MLP's middle (the input of its output projection).
HEADS_IN = {"gpt2": lambda m, i: m.transformer.h[i].attn.c_proj,
            "gpt_neo": lambda m, i: m.transformer.h[i].attn.attention.out_proj,
            "llama": lambda m, i: m.model.layers[i].self_attn.o_proj}
MLP_IN = {"gpt2": lambda m, i: m.transformer.h[i].mlp.c_proj, "gpt_neo": lambda m, i: m.transformer.h[i].mlp.c_proj,
          "llama": lambda m, i: m.model.layers[i].mlp.down_proj}


def _peer_logits(hf, module, change) -> torch.Tensor:
    """transformers' forward with `change` applied to `module`'s input by a hook that lives for this call."""
    handle = module.register_forward_pre_hook(lambda _m, args: (change(args[0].clone()), *args[1:]))
    try:
        with torch.no_grad():
            return hf(torch.tensor([ids_of_hf(hf)])).logits[0]
    finally:
        handle.remove()


def ids_of_hf(hf) -> list[int]:
    return list(encode_for_model(tokenizer(), TEXT, 32)[0].ids)


# --- edits ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_every_editable_activation_is_changed_and_recorded_as_changed(folders, family):
    model, _ = folders[family]
    ids = torch.tensor([ids_of(model)])
    plain, cache = model.run_with_cache(ids)
    for name in editable(model.config.n_layer):
        edits = {name: lambda x: x * 0.5}
        logits, edited = model.run_with_cache(ids, edits=edits)
        torch.testing.assert_close(edited[name], cache[name] * 0.5, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(logits, plain, atol=1e-6), f"editing {name} changed nothing"
    again, _ = model.run_with_cache(ids)
    assert torch.equal(again, plain)  # nothing stayed behind


@pytest.mark.parametrize("family", FAMILIES)
def test_an_edit_is_the_same_in_every_entry_point(folders, family):
    """run_with_cache, final_hidden and decode_step (a prefill, then token by token on the cache) apply an edit
    alike, and a Replace of a layer's input gives what computing the layers before it would."""
    model, _ = folders[family]
    ids = torch.tensor([ids_of(model)])
    edits = {"blocks.1.hook_mlp_out": lambda x: x * 0, "blocks.0.attn.hook_z": lambda z: z * 2}
    logits, _ = model.run_with_cache(ids, edits=edits)
    with torch.no_grad():
        torch.testing.assert_close(model.lm_head(model.final_hidden(ids, edits=edits)), logits, atol=ATOL, rtol=0)
    step, past = model.decode_step(ids[:, :4], edits=edits)
    steps = [step]
    for i in range(4, ids.shape[1]):
        step, past = model.decode_step(ids[:, i:i + 1], past, edits=edits)
        steps.append(step)
    torch.testing.assert_close(torch.cat(steps, 1), logits, atol=ATOL, rtol=0)
    _, cache = model.run_with_cache(ids)
    start = {"blocks.1.hook_resid_pre": Replace(cache["blocks.1.hook_resid_pre"])}
    with torch.no_grad():
        torch.testing.assert_close(model.lm_head(model.final_hidden(ids, edits=start)), model(ids)[0], atol=ATOL,
                                   rtol=0)
    last, _ = model.decode_step(ids, edits=start, last_only=True)
    torch.testing.assert_close(last[:, 0], model(ids)[0][:, -1], atol=ATOL, rtol=0)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_two_sessions_editing_one_shared_model_at_once_get_their_own_edits(folders, family):
    """Edits travel with the call (our GPT) or in the calling thread's context (transformers' families): two
    threads patching the same model with different edits each get their own result, and a plain run none."""
    model, _ = folders[family]
    ids = torch.tensor([ids_of(model)])
    edits = [{"blocks.0.hook_mlp_out": lambda x: x * 0}, {"blocks.1.attn.hook_z": lambda z: z * 3}, {}]
    alone = [model.run_with_cache(ids, edits=e)[0] for e in edits]
    results, errors = {}, []

    def work(i):
        try:
            for _ in range(15):
                results[i] = model.run_with_cache(ids, edits=edits[i])[0]
                assert torch.equal(results[i], alone[i])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert not torch.equal(alone[0], alone[2]) and not torch.equal(alone[1], alone[2])


def test_an_edit_of_a_name_no_pass_has_is_refused(folders):
    model, _ = folders["llama"]
    with pytest.raises(ValueError, match="cannot be edited"):
        model.run_with_cache(torch.tensor([[1, 2]]), edits={"blocks.9.hook_resid_pre": lambda x: x})


# --- ablation ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_zero_ablation_agrees_with_transformers(folders, family):
    model, hf = folders[family]
    ids = torch.tensor([ids_of(model)])
    cfg = model.config
    d_head = cfg.d_head
    cases = [(Ablation(HEAD, 1, 2, ZERO), HEADS_IN[family](hf, 1),
              lambda x: x.index_fill(-1, torch.arange(2 * d_head, 3 * d_head), 0)),
             (Ablation(NEURON, 0, 5, ZERO), MLP_IN[family](hf, 0), lambda x: x.index_fill(-1, torch.tensor([5]), 0))]
    for ab, module, change in cases:
        ours, _ = model.run_with_cache(ids, edits=ablation_edits(ab))
        torch.testing.assert_close(ours[0], _peer_logits(hf, module, change), atol=ATOL, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_mean_ablation_puts_the_reference_mean_everywhere(folders, family):
    model, _ = folders[family]
    held = ids_of(model, HELDOUT_STORY)
    ids = torch.tensor([ids_of(model)])
    for ab in (Ablation(HEAD, 0, 1, MEAN), Ablation(MLP, 1, None, MEAN), Ablation(NEURON, 1, 3, MEAN)):
        means = reference_means(model, held, [ab.name])
        _, full = model.run_with_cache(torch.tensor([held]))
        torch.testing.assert_close(means[ab.name], full[ab.name][0, 1:].mean(0), atol=1e-5, rtol=0)
        _, cache = model.run_with_cache(ids, edits=ablation_edits(ab, means))
        value = cache[ab.name][0]
        part = value[:, ab.index] if ab.kind != MLP else value
        want = means[ab.name][ab.index] if ab.kind != MLP else means[ab.name]
        torch.testing.assert_close(part, want.expand_as(part), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="needs the mean"):
        ablation_edits(Ablation(MLP, 0, None, MEAN))


def test_an_ablation_names_what_exists():
    with pytest.raises(ValueError):
        Ablation(MLP, 0, 3)
    with pytest.raises(ValueError):
        Ablation(HEAD, 0, None)
    with pytest.raises(ValueError, match="heads 0 to"):
        Ablation(HEAD, 0, 9).check(type("C", (), {"n_layer": 2, "n_head": 4, "d_mlp": 8})())


@pytest.mark.parametrize("family", FAMILIES)
def test_effects_before_and_after_with_the_same_seed(folders, family):
    model, _ = folders[family]
    ids, held = ids_of(model, "Tom found a"), ids_of(model, HELDOUT_STORY)
    nothing = effect(model, tokenizer(), ids, {}, 6, SAMPLING, seed=5, heldout=held)
    assert nothing.completion_before == nothing.completion_after and nothing.loss_before == nothing.loss_after
    assert nothing.completion_before == generate(model, ids, 6, SAMPLING, torch.Generator().manual_seed(5),
                                                 stop_id=0)
    edits = ablation_edits(Ablation(MLP, 0, None, ZERO))
    changed = effect(model, tokenizer(), ids, edits, 6, SAMPLING, seed=5, heldout=held)
    assert changed.loss_after != changed.loss_before and changed.kl > 0
    with torch.no_grad():  # the loss is the mean cross-entropy of the next tokens, as a plain forward gives it
        logits = model(torch.tensor([held]))[0][0, :-1]
    assert abs(changed.loss_before - float(F.cross_entropy(logits, torch.tensor(held[1:])))) < 1e-5
    # generating with the edit on the key/value cache = recomputing the whole text with it at every step
    greedy = SamplingSettings(temperature=0)
    fast = completion(model, ids, 5, greedy, 0, edits)
    slow = list(ids)
    for _ in range(5):
        slow.append(int(next_token_probs(model, slow, edits).argmax()))
    assert fast == slow[len(ids):]


# --- steering ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_the_steering_vector_is_the_difference_of_means_and_is_added(folders, family):
    model, _ = folders[family]
    a, b = STEERING_SETS["happy − sad"]
    sv = steering_vector(model, tokenizer(), a, b, layer=1)

    def mean(texts):
        per = []
        for t in texts:
            _, cache = model.run_with_cache(torch.tensor([ids_of(model, t)]))
            per.append(cache["blocks.1.hook_resid_pre"][0, 1:].mean(0))
        return torch.stack(per).mean(0)
    torch.testing.assert_close(sv.vector, mean(a) - mean(b), atol=1e-5, rtol=0)
    ids = torch.tensor([ids_of(model)])
    _, plain = model.run_with_cache(ids)
    logits, steered = model.run_with_cache(ids, edits=steering_edits(sv, 4.0))
    torch.testing.assert_close(steered["blocks.1.hook_resid_pre"], plain["blocks.1.hook_resid_pre"] + 4 * sv.vector,
                               atol=1e-5, rtol=0)
    zero, _ = model.run_with_cache(ids, edits=steering_edits(sv, 0.0))
    torch.testing.assert_close(zero, model.run_with_cache(ids)[0], atol=0, rtol=0)
    assert sv.relative(4.0) == pytest.approx(4 * sv.norm / sv.resid_norm)


def test_steering_sets_must_have_prompts(folders):
    model, _ = folders["gpt2"]
    with pytest.raises(Refusal, match="Set B has no prompts"):
        steering_vector(model, tokenizer(), ["happy"], ["  ", ""], 0)


# --- forcing a token -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_a_forced_token_changes_the_text_from_there_only(folders, family):
    model, _ = folders[family]
    ids = ids_of(model, "Tom found a")
    plain = branch(model, ids, 8, SAMPLING, seed=3)
    assert [s.step.token_id for s in plain] == generate(model, ids, 8, SAMPLING, torch.Generator().manual_seed(3))
    assert not any(s.forced for s in plain)
    other = next(t for t, _ in candidates(plain[2].step) if t != plain[2].step.token_id)
    forced = branch(model, ids, 8, SAMPLING, seed=3, forced={2: other})
    assert [s.step.token_id for s in forced[:2]] == [s.step.token_id for s in plain[:2]]
    assert forced[2].step.token_id == other and forced[2].forced and forced[2].drawn == plain[2].step.token_id
    same = branch(model, ids, 8, SAMPLING, seed=3, forced={2: plain[2].step.token_id})
    assert [s.step.token_id for s in same] == [s.step.token_id for s in plain]  # forcing the drawn token: no change


# --- attribution ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_leave_one_out_is_a_loop_of_forward_passes(folders, family):
    model, _ = folders[family]
    ids = ids_of(model)
    position, target = 7, 42
    full, loo = leave_one_out(model, ids, position, target)
    with torch.no_grad():
        def logp(seq):
            return float(model(torch.tensor([seq]))[0][0, -1].log_softmax(-1)[target])
        assert abs(full - logp(ids[:position + 1])) < 1e-5
        for i in range(1, position + 1):
            without = ids[:i] + ids[i + 1:position + 1]
            assert abs(float(loo[i - 1]) - (full - logp(without))) < 1e-4, i


@pytest.mark.parametrize("family", FAMILIES)
def test_gradient_x_input_agrees_with_autograd_on_transformers(folders, family):
    model, hf = folders[family]
    ids = ids_of(model)
    position, target = 8, 17
    ours = gradient_x_input(model, ids, position, target)
    embed = hf.get_input_embeddings().weight[torch.tensor(ids[:position + 1])].detach()[None].requires_grad_(True)
    logp = hf(inputs_embeds=embed).logits[0, -1].log_softmax(-1)[target]
    (grad,) = torch.autograd.grad(logp, embed)
    torch.testing.assert_close(ours, (grad * embed).sum(-1)[0, 1:].detach(), atol=1e-5, rtol=1e-4)
    assert all(p.grad is None for p in model.parameters())


def test_attribution_refuses_an_output_with_nothing_before_it(folders):
    model, _ = folders["gpt2"]
    with pytest.raises(Refusal, match="at least one token"):
        attribute(model, ids_of(model), 0, 5)
    result = attribute(model, ids_of(model), 6, 5)
    assert len(result.positions) == 6 and result.disagreement().shape == (6,)
    assert result.agreement() is None or -1 <= result.agreement() <= 1


def test_the_built_in_pairs_and_sets_are_short_and_distinct():
    for clean, corrupted in PAIRS.values():
        assert clean != corrupted and len(clean.split()) == len(corrupted.split())
    for a, b in STEERING_SETS.values():
        assert a and b and not set(a) & set(b)


def test_an_edited_model_generates_like_the_model_when_the_edit_does_nothing(folders):
    model, _ = folders["llama"]
    ids = ids_of(model, "Tom found a")
    same = Edited(model, {"blocks.0.hook_resid_pre": lambda x: x + 0})
    assert generate(same, ids, 5, SAMPLING, torch.Generator().manual_seed(1)) == \
        generate(model, ids, 5, SAMPLING, torch.Generator().manual_seed(1))
