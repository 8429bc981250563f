"""The bottom layer: distributed helpers and checkpoint files (formats, atomic writes, one reader).

Nothing here imports another simple_ijepa package except `errors`; every layer above may use it:
utils <- models <- masks <- data <- training / evaluation / analysis <- command-line tools.
"""
