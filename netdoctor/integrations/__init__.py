"""Integrations with libraries around the frameworks (Lightning, Hugging Face), imported lazily.

Nothing here imports torch, Lightning or transformers at import time: classes are recognised by
their class hierarchy's module names, and the library is imported only inside the function that
needs it.
"""
