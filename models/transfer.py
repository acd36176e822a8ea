"""Transfer learning with the AdaIN generator: a trained model moved to another set of labels.

In the AdaIN generator (models/networks.py, conditioning="adain") the labels reach the network only through a
label embedding, and only the embedding's first layer (G_LABEL_LAYER) has a size that depends on the number of
labels; in the discriminator, only the AU head (and the --d-projection head: D_LABEL_LAYERS). A model trained on the 17 AUs therefore starts a
model for other labels with every other weight: the image encoder, the residual and up-sampling blocks with
their AdaIN projections, the embedding's second layer, the heads, and the critic's trunk.

    G5, D5 = transfer_networks(G, D, net, num_aus=5)      # networks in memory, of a NetworkConfig `net`
    G5, D5 = transfer_run("runs/RUN", num_aus=5)          # the same from a run's last checkpoint (training/state.py)

The new label layers keep their fresh initialisation. The tile generator cannot be moved: its first conv takes
the labels as input channels, so no part of it is independent of them.
"""
import itertools

_suffixes = itertools.count()


def _key(model, weight):
    """A weight's name inside its model: 'G_7_res0_conv1/filters:0' -> 'res0_conv1/filters'."""
    return weight.name[len(model.name) + 1:].split(":")[0]


def copy_weights(source, target, label_layer):
    """Assign every weight of `source` to the weight of the same name in `target`, except those of the layer
    `label_layer` (a name inside the model, e.g. "embed1", or a tuple of such names), which may differ in shape
    and are left as they are.

    Both models must be the same architecture otherwise: a weight of either without a counterpart of the same
    shape is a ValueError naming it. Returns the names of the target's weights that were not copied.
    """
    label_layers = (label_layer,) if isinstance(label_layer, str) else tuple(label_layer)
    sources = {_key(source, w): w for w in source.all_weights}
    copied, left = set(), []
    for w in target.all_weights:
        key = _key(target, w)
        if key.split("/")[0] in label_layers:
            left.append(key)
            continue
        s = sources.get(key)
        if s is None or tuple(s.shape) != tuple(w.shape):
            found = "no such weight" if s is None else f"shape {tuple(s.shape)}"
            raise ValueError(f"{target.name}: weight {key} {tuple(w.shape)} has no counterpart in {source.name} "
                             f"({found}): not the same architecture")
        w.assign(s)
        copied.add(key)
    unused = [k for k in sources if k not in copied and k.split("/")[0] not in label_layers]
    if unused:
        raise ValueError(f"{source.name}: weight {unused[0]} has no counterpart in {target.name}: "
                         "not the same architecture")
    return left


def transfer_networks(G, D, net, num_aus, name_suffix=None):
    """(G_new, D_new) for `num_aus` labels, built from the NetworkConfig of (G, D) (an AdaIN run), with every
    weight copied from G and D but the generator's first embedding layer and the discriminator's AU head."""
    from models.networks import D_LABEL_LAYERS, G_LABEL_LAYER, build_networks
    if G.conditioning != "adain":
        raise ValueError(f"moving a generator to another label size needs --conditioning adain; {G.name} is "
                         f"{G.conditioning}-conditioned (its first conv takes the labels as input channels)")
    G_new, D_new = build_networks(net, name_suffix or f"_transfer{next(_suffixes)}", num_aus)
    copy_weights(G, G_new, G_LABEL_LAYER)
    copy_weights(D, D_new, D_LABEL_LAYERS)
    return G_new, D_new
