"""What people use: the `rag` command (`cli`), rendering for the terminal, JSON and the web chat
(`render`), build progress (`progress`) and uploads (`uploads`). `app.py` holds the Gradio layout."""
