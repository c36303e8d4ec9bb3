"""The web chat's look: the Gradio theme and the style sheet of the layout in app.py and of the
Sources panel rendered by `rag.serve.render`. Holds values only: no components, no behaviour.
"""

from __future__ import annotations

import gradio as gr

CSS = """
.gradio-container { max-width: 1400px !important; margin: 0 auto !important; }
#title h1 { margin-bottom: 0; }
#title p { margin-top: 4px; color: var(--body-text-color-subdued); }
#sources-box { max-height: 560px; overflow-y: auto !important; padding-right: 6px; }
.src-panel { display: flex; flex-direction: column; gap: 10px; font-size: 14px; line-height: 1.5; }
.src-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 10px 12px;
            background: var(--background-fill-primary); }
.src-cited { border-left: 4px solid #d97706; }
.src-title { font-size: 15px; }
.src-doc { font-weight: 700; }
.src-n { display: inline-block; background: #d97706; color: #fff; border-radius: 4px; padding: 0 6px;
         font-weight: 600; font-size: 13px; margin-right: 4px; }
.src-other .src-n { background: var(--neutral-400); }
.src-path { color: var(--body-text-color-subdued); font-size: 13px; margin-top: 2px; }
.src-meta { color: var(--body-text-color-subdued); font-size: 12px; font-family: var(--font-mono); margin-top: 2px; }
.src-link { color: #b45309; text-decoration: underline; text-underline-offset: 2px; }
.src-link:hover { color: #92400e; }
.src-text { margin: 8px 0 0 0; white-space: normal; }
.src-text mark { background: #fde68a; color: #1f2937; padding: 1px 2px; border-radius: 3px; }
.src-more summary { cursor: pointer; font-weight: 600; padding: 4px 0; }
.src-more .src-card { margin-top: 8px; }
.src-abstain, .src-warn { border: 1px solid #f59e0b; background: #fffbeb; color: #78350f; border-radius: 8px;
                          padding: 8px 12px; font-weight: 600; }
.src-sup { color: #b45309; font-weight: 700; font-size: 11px; margin: 0 3px 0 1px; }
.src-empty { color: var(--body-text-color-subdued); padding: 8px 2px; }
#chat button.example { border: 1px solid var(--border-color-primary); border-radius: 10px;
                       background: var(--background-fill-secondary); }
#chat button.example:hover { border-color: #d97706; }
#new-chat, #ask { white-space: nowrap; }
#index-info { color: var(--body-text-color-subdued); font-size: 13px; }
#upload-info, #upload-info p { color: var(--body-text-color-subdued); font-size: 12px; line-height: 1.4;
                               margin: 2px 0 0 0; }
"""


THEME = gr.themes.Soft(
    primary_hue="amber", neutral_hue="slate",
    font=["ui-sans-serif", "system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
)
