"""Workshop room: a presenter opens a room, everyone joins by its code, link or QR code, and each round the room
guesses the next token of a prompt; then the room's guesses are shown beside the model's own probabilities.

The room lives in a database (ui/room/store.py), so every session sees the same room and a restart loses
nothing; the page follows it by itself, once a second.
"""
import ui
from ui.room import PAGE, room_page

ui.setup_page(PAGE)
room_page("Workshop room: guess the next token")
