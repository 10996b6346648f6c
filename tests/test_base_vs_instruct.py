"""Base vs instruct (engine/model/chat.py, engine/inspect/model_pair.py, ui/rlhf/base_vs_instruct.py): two tiny
random Llama folders stand in for a real pair, the instruct one with a chat template in tokenizer_config.json.
The template's tokens on the page are transformers' own apply_chat_template's; a hostile template is refused;
the comparison's figures hold for a model against itself and against another; the page draws the pair, says
which pair to add when there is none, and then compares the built-in model before and after a DPO run."""
from __future__ import annotations

import copy
import json
import re

import pytest
import torch
from streamlit.testing.v1 import AppTest

import ui.models
from conftest import ROOT
from engine.inspect.model_pair import compare_pair, parting_stage
from engine.model.chat import ChatTemplateError, chat_prompt, load_checked_tokenizer
from engine.model.hf import load_model
from engine_fixtures import tokenizer
from ui.rlhf.base_vs_instruct import SUGGESTED, find_pairs, prompt_ids

PAGE = str(ROOT / "pages" / "6_Pretraining_vs_RLHF.py")
TIMEOUT = 180
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
PROMPT = "Where is the cat?"


def save_llama(folder, seed: int, template: str | None) -> None:
    """A tiny random Llama whose tokenizer has the chat markers as special tokens; `template` is written into
    tokenizer_config.json (as older repos, SmolLM2's included, ship it), not into chat_template.jinja."""
    from transformers import LlamaConfig, LlamaForCausalLM
    tok = copy.deepcopy(tokenizer())
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, intermediate_size=48, max_position_embeddings=64, bos_token_id=0,
                         eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"))
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    if template is not None:
        cfg["chat_template"] = template
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))


@pytest.fixture(scope="module")
def pair_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("pair")
    save_llama(root / "tiny-llama", 0, None)
    save_llama(root / "tiny-llama-Instruct", 1, CHATML)
    return root


@pytest.fixture
def with_pair(pair_dir, monkeypatch):
    monkeypatch.setenv("GLASSBOX_MODELS_DIR", str(pair_dir))
    monkeypatch.setenv("GLASSBOX_HUB_DIR", str(pair_dir / ".hub"))
    ui.models.server_models.clear()
    yield pair_dir
    ui.models.server_models.clear()
    ui.models.SHARED.clear()


def transformers_ids(folder, message: str) -> list[int]:
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
    return list(tok.apply_chat_template([{"role": "user", "content": message}], add_generation_prompt=True,
                                        tokenize=True, return_dict=False))


def test_the_template_tokens_are_transformers_own(pair_dir):
    folder = pair_dir / "tiny-llama-Instruct"
    tok = load_checked_tokenizer(folder)
    chat = chat_prompt(tok, PROMPT)
    assert list(chat.ids) == transformers_ids(folder, PROMPT)
    assert chat.text == f"<|im_start|>user\n{PROMPT}<|im_end|>\n<|im_start|>assistant\n"
    marks = {tok.convert_tokens_to_ids(t) for t in ("<|im_start|>", "<|im_end|>")}
    assert [i in marks for i in chat.ids] == list(chat.special) and sum(chat.special) == 3
    assert chat.tokens[0] == "<|im_start|>"  # a special token shown as what it is


def test_no_template_or_a_hostile_one_is_refused_in_a_sentence(pair_dir):
    base = load_checked_tokenizer(pair_dir / "tiny-llama")
    with pytest.raises(ChatTemplateError, match="no chat template"):
        chat_prompt(base, PROMPT)
    hostile = copy.deepcopy(base)
    hostile.chat_template = "{{ ''.__class__.__mro__[1].__subclasses__() }}"  # the sandbox forbids this
    with pytest.raises(ChatTemplateError, match="could not be rendered"):
        chat_prompt(hostile, PROMPT)
    hostile.chat_template = "x" * 70_000
    with pytest.raises(ChatTemplateError, match="characters long"):
        chat_prompt(hostile, PROMPT)
    ids, chat = prompt_ids(base, PROMPT, False)  # a base model reads the text after the start marker
    assert chat is None and ids[0] == 0


def test_a_model_against_itself_and_against_another(pair_dir):
    base, tok = load_model(pair_dir / "tiny-llama")
    instruct, _ = load_model(pair_dir / "tiny-llama-Instruct")
    ids = list(chat_prompt(load_checked_tokenizer(pair_dir / "tiny-llama-Instruct"), PROMPT).ids)
    same = compare_pair(base, base, tok, ids)
    assert float(same.kl.abs().max()) < 1e-6 and all(p is None for p in same.parting)
    assert float(same.lens_kl.abs().max()) < 1e-6
    other = compare_pair(base, instruct, tok, ids)
    assert float(other.kl.min()) > 0 and other.lens_kl.shape == (len(other.stages), len(ids))
    # the lens's last stage is each model's own output
    assert torch.equal(other.lens_top_a[-1], base(torch.tensor([ids]))[0][0].argmax(-1))
    assert torch.allclose(other.lens_kl[-1], other.kl, atol=1e-5)
    for p, stage in enumerate(other.parting):
        assert (stage is None) == bool(other.lens_top_a[-1, p] == other.lens_top_b[-1, p])
    assert parting_stage(torch.tensor([1, 2, 2, 3]), torch.tensor([1, 5, 2, 4])) == 3
    assert parting_stage(torch.tensor([1, 2]), torch.tensor([1, 2])) is None


def test_pairs_are_found_by_name(with_pair):
    pairs = find_pairs()
    assert [(p.base.name, p.instruct.name) for p in pairs] == [("tiny-llama", "tiny-llama-Instruct")]


def chips(at: AppTest) -> tuple[list[int], list[bool]]:
    block = next(m.value for m in at.markdown if 'class="gb-bvi"' in m.value)
    spans = re.findall(r'<span class="(sp)?" title="position \d+, id (\d+)', block)
    return [int(i) for _, i in spans], [sp == "sp" for sp, _ in spans]


def test_the_page_shows_the_pair_its_template_and_the_comparison(with_pair):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["rlhf.bvi_prompt"] = PROMPT
    at.run()
    assert not at.exception
    ids, special = chips(at)
    assert ids == transformers_ids(with_pair / "tiny-llama-Instruct", PROMPT) and sum(special) == 3
    assert at.selectbox(key="rlhf.pair").value == "tiny-llama and tiny-llama-Instruct"
    at.button(key="rlhf.bvi_go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    keys = [el.proto.id for el in at.get("plotly_chart")]
    assert any(k.endswith("rlhf.pair_dist") for k in keys) and any(k.endswith("rlhf.pair_lens") for k in keys)
    assert len([c for c in at.caption if "seed 11" in c.value]) == 2
    at.toggle(key="rlhf.bvi_template").set_value(False).run()  # the raw text: no template, a start marker
    assert chips(at)[0][0] == 0 and sum(chips(at)[1]) == 1


def test_without_a_pair_the_page_says_which_to_add_and_uses_the_dpo_run():
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception
    line = next(i.value for i in at.info if "No base and instruct pair" in i.value)
    assert SUGGESTED[0] in line and SUGGESTED[1] in line
    assert any("Tune a copy of the model with DPO" in c.value for c in at.caption)
    at.button(key="rlhf.add_set").click().run()
    at.slider(key="rlhf.steps").set_value(5).run()
    at.button(key="rlhf.start").click().run()
    at.session_state["rlhf.run"].join(TIMEOUT)
    at.run()
    assert not at.exception and not at.error
    keys = [el.proto.id for el in at.get("plotly_chart")]
    assert any(k.endswith("rlhf.dpo_kl") for k in keys) and any(k.endswith("rlhf.dpo_lens") for k in keys)
    assert any("(before DPO) · seed 11" in c.value for c in at.caption)
