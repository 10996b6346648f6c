"""The Scale ladder page: its declaration, and the session keys of what it has asked for."""
from ..page import Page

PAGE = Page("scale", "Scale ladder", "pages/8_Scale_ladder.py", ":material/stairs:",
            "The same prompt's next token and logit lens on models from yours to Llama-3.1-405B, with size and time.",
            favicon="🪜", remote=True)
RUNGS = PAGE.key("rungs")  # W: the models on the ladder (picker values)
ASKED = PAGE.key("asked")  # S: the (text, rungs) whose NDIF models this session asked for
