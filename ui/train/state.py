"""The Train page: its declaration and the session keys its modules share."""
from ..page import Page

PAGE = Page("train", "Train", "pages/5_Train.py", ":material/model_training:",
            "Train a small transformer, watch it learn, then look inside the model you trained.",
            favicon="🏋️")
ESTIMATE = PAGE.key("estimate_s")  # session key: the cost panel's estimate of the run's length, in seconds
