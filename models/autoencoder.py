"""The LSTM autoencoder: config dataclass and module in one file (nanoGPT style).

Encoder: a (bi)directional LSTM reads the 140-sample beat; its final hidden states are
projected to an embedding.  Decoder: the embedding is repeated over the 140 steps and
fed to an LSTM whose outputs a linear layer maps back to one sample per step.  The
anomaly score of a beat is its mean squared reconstruction error.

Per-beat score and decision are separate: the model only produces the loss;
``ecgmon.monitor.alarms`` owns thresholds and alarms.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True, slots=True)
class AEConfig:
    """Model size.  ``seq_len`` in samples; every other field counts units."""

    seq_len: int = 140
    channels: int = 1  # 1: ECG5000's beats; 2: a window beat and its RR prematurity
    hidden: int = 64
    embedding: int = 32
    enc_layers: int = 1
    dec_layers: int = 1
    bidirectional: bool = True

    def to_dict(self) -> dict[str, int | bool]:
        return asdict(self)


class LSTMAutoencoder(nn.Module):
    """Beat (B, 140) -> reconstruction (B, 140); with several channels (B, C, 140) -> (B, C, 140)."""

    def __init__(self, cfg: AEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        dirs = 2 if cfg.bidirectional else 1
        self.encoder = nn.LSTM(cfg.channels, cfg.hidden, num_layers=cfg.enc_layers, batch_first=True,
                               bidirectional=cfg.bidirectional)
        self.to_embedding = nn.Linear(cfg.hidden * dirs, cfg.embedding)
        self.decoder = nn.LSTM(cfg.embedding, cfg.hidden, num_layers=cfg.dec_layers, batch_first=True)
        self.head = nn.Linear(cfg.hidden, cfg.channels)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        # (B, 140) or (B, C, 140) -> steps last-but-one, channels last, as the LSTM reads them
        _, (h, _) = self.encoder(x.unsqueeze(-1) if x.dim() == 2 else x.transpose(1, 2))
        # last layer's final state, both directions when bidirectional
        last = h[-2:] if self.cfg.bidirectional else h[-1:]
        return torch.tanh(self.to_embedding(torch.cat(list(last), dim=-1)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out, _ = self.decoder(z.unsqueeze(1).expand(-1, self.cfg.seq_len, -1))
        y = self.head(out)  # (B, 140, C)
        return y.squeeze(-1) if self.cfg.channels == 1 else y.transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def reconstruction_loss(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """Per-beat anomaly score: mean squared error over the 140 samples (and channels), shape (B,)."""
    return (recon - x).pow(2).flatten(1).mean(dim=-1)
