"""R50-AOTL (Yang et al., "Associating Objects with Transformers", NeurIPS 2021) as released by
yoxu515/aot-benchmark, loading ``R50_AOTL_PRE_YTB_DAV.pth`` unchanged (reference/aot-tpavi.md section 1).

The model is stateless; a video's memory lives in the session ``model.start(frame0, mask0)`` returns
(coprop.models.published.aot_session). Its pieces -- ``encode``, ``id_embedding``, ``lstt``, ``decode`` --
are also what the ``paper`` config's Audio-Insert Propagator is built from (paper 4.2).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coprop.models.published.aot_layers import D_MODEL, LSTT, FrozenBatchNorm2d

MAX_OBJECTS = 10            # identities per engine; 11 channels with background
ENCODER_DIMS = (256, 512, 1024)


def resnet50_trunk() -> nn.Module:
    """timm's ResNet-50 up to layer3 (strides 4/8/16, no dilation) with frozen batch norm; its keys are the
    checkpoint's ``encoder.*`` keys (section 1.3). Returns a module mapping ``[B,3,H,W]`` to 3 maps."""
    import timm

    body = timm.create_model("resnet50", pretrained=False, features_only=True, out_indices=(1, 2, 3))

    def freeze(module: nn.Module) -> None:
        for name, child in module.named_children():
            if isinstance(child, nn.BatchNorm2d):
                setattr(module, name, FrozenBatchNorm2d(child.num_features, child.eps))
            else:
                freeze(child)

    freeze(body)
    return body


class ConvGN(nn.Module):
    """Conv (padding k//2, with bias) then GroupNorm(8); the ReLU is applied by the caller."""

    def __init__(self, cin: int, cout: int, k: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=k // 2)
        self.gn = nn.GroupNorm(8, cout)

    def forward(self, x: Tensor) -> Tensor:
        return self.gn(self.conv(x))


class FPNSegmentationHead(nn.Module):
    """AOT's decoder (section 1.9): [projected 16x map ; LSTT outputs] + raw encoder skips -> stride-4 logits."""

    def __init__(self, in_dim: int = 4 * D_MODEL, out_dim: int = MAX_OBJECTS + 1, dim: int = D_MODEL):
        super().__init__()
        self.conv_in = ConvGN(in_dim, dim, 1)
        self.conv_16x = ConvGN(dim, dim, 3)
        self.conv_8x = ConvGN(dim, dim // 2, 3)
        self.conv_4x = ConvGN(dim // 2, dim // 2, 3)
        self.adapter_16x = nn.Conv2d(ENCODER_DIMS[2], dim, 1)
        self.adapter_8x = nn.Conv2d(ENCODER_DIMS[1], dim, 1)
        self.adapter_4x = nn.Conv2d(ENCODER_DIMS[0], dim // 2, 1)
        self.conv_out = nn.Conv2d(dim // 2, out_dim, 1)

    def forward(self, maps: list[Tensor], skips: list[Tensor]) -> Tensor:
        """``maps``: 4 maps ``[B,256,h,w]``; ``skips``: raw layer1/2/3 maps -> logits ``[B,11,h4,w4]``."""
        s4, s8, s16 = skips
        x = F.relu(self.conv_in(torch.cat(maps, dim=1)))
        x = F.relu(self.conv_16x(self.adapter_16x(s16) + x))
        x = F.interpolate(x, size=s8.shape[-2:], mode="bilinear", align_corners=True)
        x = F.relu(self.conv_8x(self.adapter_8x(s8) + x))
        x = F.interpolate(x, size=s4.shape[-2:], mode="bilinear", align_corners=True)
        x = F.relu(self.conv_4x(self.adapter_4x(s4) + x))
        return self.conv_out(x)


class R50AOTL(nn.Module):
    """R50-AOTL: ResNet-50 (to layer3) -> 1x1 projection -> 3 LSTT layers -> FPN decoder; ID bank 17x17/16.

    Use ``coprop.models.published.load_published('r50_aotl', path)`` to get it with weights, then
    ``sess = model.start(frame0, mask0)`` and ``sess.step(frame)`` per frame.
    """

    max_objects = MAX_OBJECTS

    def __init__(self, num_layers: int = 3):
        super().__init__()
        self.encoder = resnet50_trunk()
        self.encoder_projector = nn.Conv2d(ENCODER_DIMS[2], D_MODEL, 1)
        self.LSTT = LSTT(num_layers)
        self.decoder = FPNSegmentationHead((num_layers + 1) * D_MODEL)
        self.patch_wise_id_bank = nn.Conv2d(MAX_OBJECTS + 1, D_MODEL, 17, stride=16, padding=8)

    def encode(self, images: Tensor) -> tuple[list[Tensor], Tensor]:
        """Normalised images ``[B,3,H,W]`` -> (raw layer1/2/3 maps at strides 4/8/16, projected map ``[B,256,h,w]``)
        with ``h = ceil(H/16)``, ``w = ceil(W/16)``."""
        skips = list(self.encoder(images))
        return skips, self.encoder_projector(skips[2])

    def id_embedding(self, onehot: Tensor) -> Tensor:
        """Identity channels ``[B, 11, H, W]`` (one-hot; channel 0 background) -> ID tokens ``[B, h*w, 256]``."""
        return self.patch_wise_id_bank(onehot).flatten(2).transpose(1, 2)

    def lstt(self, tokens: Tensor, pos: Tensor, hw: tuple[int, int], memories: list | None = None,
             id_emb: Tensor | None = None) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """Run the LSTT layers: ``tokens [B, N, 256]``; ``memories[l] = ((K_lt, V_lt), (K_st, V_st))`` per layer,
        or ``id_emb`` for a reference frame. Returns (normalised layer outputs ``[B, N, 256]``, keys, ``h``s)."""
        outs, keys, hs = [], [], []
        x = tokens
        for i, (layer, norm) in enumerate(zip(self.LSTT.layers, self.LSTT.decoder_norms)):
            long_kv, short_kv = memories[i] if memories is not None else (None, None)
            x, key, h = layer(x, pos, hw, long_kv, short_kv, id_emb)
            outs.append(norm(x))
            keys.append(key)
            hs.append(h)
        return outs, keys, hs

    def decode(self, proj: Tensor, outs: list[Tensor], skips: list[Tensor],
               dtype: torch.dtype | None = None) -> Tensor:
        """Projected map ``[B,256,h,w]``, normalised LSTT outputs, raw skips -> 11 logits ``[B,11,h4,w4]``.

        ``dtype`` (e.g. ``torch.float64``): run the decoder in that dtype -- its inputs and a cast of its weights,
        made per call so the module itself stays as loaded -- and return the logits in it; None = the inputs' dtype.
        """
        B, C, h, w = proj.shape
        maps = [proj] + [o.transpose(1, 2).reshape(B, C, h, w) for o in outs]
        if dtype is None or dtype == proj.dtype:
            return self.decoder(maps, skips)
        weights = {n: t.to(dtype) for n, t in [*self.decoder.named_parameters(), *self.decoder.named_buffers()]}
        return torch.func.functional_call(self.decoder, weights, ([m.to(dtype) for m in maps],
                                                                 [s.to(dtype) for s in skips]))

    def memory_values(self, hs: list[Tensor], id_emb: Tensor) -> list[Tensor]:
        """Every layer's memory value ``linear_V(h + id)`` ``[B, N, 256]``."""
        return [layer.memory_value(h, id_emb) for layer, h in zip(self.LSTT.layers, hs)]

    def start(self, frame0, mask0, long_term_gap: int = 5, num_objects: int | None = None,
              decoder_precision: str = "float64"):
        """A video session from its first frame and mask; see ``AOTSession`` (also for ``decoder_precision``)."""
        from coprop.models.published.aot_session import AOTSession

        return AOTSession(self, frame0, mask0, long_term_gap=long_term_gap, num_objects=num_objects,
                          decoder_precision=decoder_precision)


def build_r50_aotl() -> R50AOTL:
    """R50-AOTL with random weights, eval mode (load_published('r50_aotl', ...) fills them)."""
    return R50AOTL().eval()
