"""Networks: plain ``nn.Module`` classes with typed constructor arguments (the config schema).

Each takes ``num_classes`` (linked from the data module) and maps ``(N, 1, H, W)`` feature images
to ``(N, num_classes)`` logits; ``forward_features`` returns the pooled features before the head.
"""

from spokenword.models.cnn import SpectrogramCNN
from spokenword.models.speech_embedding import SpeechEmbedding, SpeechEmbeddingCNN

__all__ = ["SpectrogramCNN", "SpeechEmbedding", "SpeechEmbeddingCNN"]
