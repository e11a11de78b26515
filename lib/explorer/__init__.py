"""The attention explorer: one offline web page with every layer and head behind a translation.

``page`` (the attention of one translation and the page's data, written into the template), and the template itself:
``page.html``, ``style.css`` and ``explorer.js``, written for this project.
"""
