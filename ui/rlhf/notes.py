"""The Pre-training vs RLHF page's words that are not figures: the two stages compared, and what real RLHF
adds that this page does not do."""

INTRO = (
    "A language model is made in stages. **Pre-training** teaches it to predict the next token of a large body "
    "of text: that is where its knowledge of words, grammar and stories comes from. **RLHF** (reinforcement "
    "learning from human feedback) comes after: people compare the model's answers, and the model is adjusted "
    "towards the ones they prefer, aligning what it says with what its users want. Below, the built-in model's "
    "pre-training, and then the second stage done for real: you give the preferences, and a copy of the "
    "running model is tuned on them with DPO.")

STAGES = """
| | pre-training | preference tuning (the idea behind RLHF) |
| --- | --- | --- |
| learns from | raw text | pairs of completions, one preferred over the other |
| signal | the token that really came next | which of two answers a person (here: you, or a rule) preferred |
| gives the model | knowledge: words, grammar, facts, style | behaviour: what it chooses to say |
| cost | almost all of the compute | a small fraction of it |
"""

DPO = (
    "**Direct Preference Optimization** (Rafailov et al., 2023) tunes a copy of the model, the *policy*, and keeps "
    "the original frozen as the *reference*. For each pair it compares how much more likely the policy makes the "
    "preferred completion than the reference does, against the same for the rejected one:\n\n"
    "loss = −log σ( β · [ (log π(chosen) − log π_ref(chosen)) − "
    "(log π(rejected) − log π_ref(rejected)) ] )\n\n"
    "β · (log π − log π_ref) is a completion's implicit **reward**; the **reward margin** is the chosen reward "
    "minus the rejected one, and it grows as the model learns what you prefer. Every number below is computed "
    "from the running model.")

REAL_RLHF = """
**What real RLHF adds, and what this page leaves out**

- **Supervised fine-tuning (SFT)** usually comes first: the pre-trained model is trained further, with the
  ordinary next-token loss, on example conversations written by people, so that it answers instead of just
  continuing text. Most pipelines run it between pre-training and preference tuning.
- **Classic RLHF** (InstructGPT, 2022) then trains a separate **reward model** on people's rankings of answers,
  and optimises the language model against that reward with reinforcement learning (**PPO**), with a penalty
  for drifting from the SFT model (a KL term, the role β plays here).
- **DPO skips both** the reward model and the reinforcement learning: it reaches the same kind of objective
  directly from the pairs, which is why a laptop can run it here in seconds. Many open models are tuned with DPO
  or one of its descendants today.
- Real preference data comes from many people and covers helpfulness, honesty and safety on every kind of
  prompt; the built-in sets here are a simple rule on children's stories, standing in for those people.
"""
