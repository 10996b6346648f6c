"""The Pre-training vs RLHF page: its declaration; its remembered widgets survive a visit to another page."""
from ..page import Page

PAGE = Page("rlhf", "Pre-training vs RLHF", "pages/6_Pretraining_vs_RLHF.py", ":material/thumbs_up_down:",
            "Tell the model which completions you prefer and tune it with DPO: what changes, and what does not.",
            favicon="👍")
remembered = PAGE.remembered
