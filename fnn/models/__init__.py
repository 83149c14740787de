"""Models as pure functions: `mlp` (DLFS1 ch4–6), `cnn` (ch7–8), `rnnlm` and `seqclf` (DLFS2 ch5–6),
`seq2seq` (DLFS2 ch7) and `attention_seq2seq` (DLFS2 ch8).

Each module's constructor returns a `Model` (init / apply / loss / manual_grad; ``help(Model)`` has
the contract). `runner` runs a sequence of layers forward collecting caches and backward in reverse
(the book's backprop); every model above is built on it.
"""

from fnn.models import attention_seq2seq, cnn, mlp, rnnlm, runner, seq2seq, seqclf
from fnn.models._model import Model

__all__ = ["Model", "attention_seq2seq", "cnn", "mlp", "rnnlm", "runner", "seq2seq", "seqclf"]
