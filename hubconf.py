"""torch.hub entry points for sslzoo: one per registered ``{arch}_{method}`` name.

    encoder = torch.hub.load("<owner>/sslzoo", "resnet50_simclust", pretrained=True)
    classifier = torch.hub.load("<owner>/sslzoo", "resnet50_simclust", pretrained=True, num_classes=10)
    encoder = torch.hub.load("<owner>/sslzoo", "resnet18_cifar_simclust", checkpoint_path="outputs/run")

Imports happen inside the entry points, so listing entries needs only this file. The names below must equal
``sslzoo.list_models()`` (a test checks it).
"""

dependencies = ["torch", "torchvision", "timm", "safetensors", "huggingface_hub"]


def _entrypoint(name: str):
    arch, _, method = name.rpartition("_")

    def entrypoint(pretrained=False, checkpoint_path=None, tag=None, **kwargs):
        import sslzoo

        model_name = f"{name}.{tag}" if tag else name
        source = checkpoint_path if checkpoint_path is not None else pretrained
        return sslzoo.create_model(model_name, pretrained=source, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__doc__ = f"""{arch} encoder trained with {method} (sslzoo), as a timm model.

    Args:
        pretrained: load the default pretrained weights of this entry (or of ``tag``).
        checkpoint_path: a weights file or an ``sslzoo.save_pretrained`` directory to load instead.
        tag: a pretrained weight set, e.g. ``"in1k"`` (see ``sslzoo.list_pretrained("{name}*")``).
        **kwargs: passed to ``timm.create_model``; ``num_classes`` defaults to 0 (features of size
            ``model.num_features``), ``num_classes=N`` adds a fresh classifier for fine-tuning.
    """
    return entrypoint


resnet18_barlowtwins = _entrypoint("resnet18_barlowtwins")
resnet18_byol = _entrypoint("resnet18_byol")
resnet18_cifar_barlowtwins = _entrypoint("resnet18_cifar_barlowtwins")
resnet18_cifar_byol = _entrypoint("resnet18_cifar_byol")
resnet18_cifar_dino = _entrypoint("resnet18_cifar_dino")
resnet18_cifar_mocov3 = _entrypoint("resnet18_cifar_mocov3")
resnet18_cifar_simclr = _entrypoint("resnet18_cifar_simclr")
resnet18_cifar_simclust = _entrypoint("resnet18_cifar_simclust")
resnet18_cifar_simsiam = _entrypoint("resnet18_cifar_simsiam")
resnet18_cifar_swav = _entrypoint("resnet18_cifar_swav")
resnet18_cifar_vicreg = _entrypoint("resnet18_cifar_vicreg")
resnet18_dino = _entrypoint("resnet18_dino")
resnet18_mocov3 = _entrypoint("resnet18_mocov3")
resnet18_simclr = _entrypoint("resnet18_simclr")
resnet18_simclust = _entrypoint("resnet18_simclust")
resnet18_simsiam = _entrypoint("resnet18_simsiam")
resnet18_swav = _entrypoint("resnet18_swav")
resnet18_vicreg = _entrypoint("resnet18_vicreg")
resnet50_barlowtwins = _entrypoint("resnet50_barlowtwins")
resnet50_byol = _entrypoint("resnet50_byol")
resnet50_cifar_barlowtwins = _entrypoint("resnet50_cifar_barlowtwins")
resnet50_cifar_byol = _entrypoint("resnet50_cifar_byol")
resnet50_cifar_dino = _entrypoint("resnet50_cifar_dino")
resnet50_cifar_mocov3 = _entrypoint("resnet50_cifar_mocov3")
resnet50_cifar_simclr = _entrypoint("resnet50_cifar_simclr")
resnet50_cifar_simclust = _entrypoint("resnet50_cifar_simclust")
resnet50_cifar_simsiam = _entrypoint("resnet50_cifar_simsiam")
resnet50_cifar_swav = _entrypoint("resnet50_cifar_swav")
resnet50_cifar_vicreg = _entrypoint("resnet50_cifar_vicreg")
resnet50_dino = _entrypoint("resnet50_dino")
resnet50_mocov3 = _entrypoint("resnet50_mocov3")
resnet50_simclr = _entrypoint("resnet50_simclr")
resnet50_simclust = _entrypoint("resnet50_simclust")
resnet50_simsiam = _entrypoint("resnet50_simsiam")
resnet50_swav = _entrypoint("resnet50_swav")
resnet50_vicreg = _entrypoint("resnet50_vicreg")
vit_small_patch16_224_barlowtwins = _entrypoint("vit_small_patch16_224_barlowtwins")
vit_small_patch16_224_byol = _entrypoint("vit_small_patch16_224_byol")
vit_small_patch16_224_dino = _entrypoint("vit_small_patch16_224_dino")
vit_small_patch16_224_mocov3 = _entrypoint("vit_small_patch16_224_mocov3")
vit_small_patch16_224_simclr = _entrypoint("vit_small_patch16_224_simclr")
vit_small_patch16_224_simclust = _entrypoint("vit_small_patch16_224_simclust")
vit_small_patch16_224_simsiam = _entrypoint("vit_small_patch16_224_simsiam")
vit_small_patch16_224_swav = _entrypoint("vit_small_patch16_224_swav")
vit_small_patch16_224_vicreg = _entrypoint("vit_small_patch16_224_vicreg")
