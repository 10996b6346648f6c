"""The Tokens and vectors page: its declaration, tabs and link settings."""
from ..page import Page
from ..view import tab

TABS = ("Compare tokenizers", "Watch BPE learn", "Tokenization pitfalls", "Vectors")  # the page's tabs, in order

PAGE = Page("tokens", "Tokens and vectors", "pages/1_Tokens_and_vectors.py", ":material/token:",
            "Text becomes tokens, tokens become vectors: chips, tokenizers compared, BPE learning live.",
            settings=(tab(TABS),), favicon="🔤")
