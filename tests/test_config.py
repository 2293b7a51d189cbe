import pytest

from fpq.config import ConfigError, RunConfig, dump_config, load_config, to_dict, with_overrides


def base(**extra) -> dict:
    return {"arch": "resnet20", "method": "lsq", "teacher": "t.pt", "quant": {"w_bits": 4, "a_bits": 4}, **extra}


def test_defaults_follow_the_paper():
    cfg = load_config(base())
    assert (cfg.optim.momentum, cfg.optim.weight_decay, cfg.optim.batch_size) == (0.9, 5e-4, 256)
    assert cfg.quant.sfp_p == 0.1 and cfg.quant.csd_lambda == 1.0 and cfg.quant.csd_eps == 1e-5
    assert cfg.quant.first_last_bits == 8 and cfg.quant.calib_images == 100
    assert cfg.quant.kd_temperature == 4.0 and cfg.quant.sam_rho == 0.05


def test_round_trip_through_dict():
    cfg = load_config(base(seed=3))
    assert load_config(to_dict(cfg)) == cfg
    assert '"seed": 3' in dump_config(cfg)


def test_yaml_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("arch: resnet18\nmethod: fp\noptim: {epochs: 3, lr: 0.1}\n")
    cfg = load_config(path)
    assert cfg.arch == "resnet18" and cfg.optim.epochs == 3 and isinstance(cfg, RunConfig)


@pytest.mark.parametrize("text, expected", [
    ("arch: [resnet20\n", "is not valid YAML: line 2, column 1: expected ',' or ']', but got '<stream end>' "
                          "(while parsing a flow sequence that starts at line 1, column 7)"),
    ("arch: resnet20\n method: fp\n", "is not valid YAML: line 2, column 8: mapping values are not allowed here"),
    ("- resnet20\n", "does not hold a mapping (it holds list)"),
    ("arch: resnet20\noptimiser: {}\n", ": optimiser: unknown key (did you mean 'optim'?)"),
])
def test_a_bad_yaml_file_is_named_with_its_line_and_column_on_one_line(tmp_path, text, expected):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(f"config file {path}") and expected in message, message
    assert "<unicode string>" not in message and "\n" not in message


@pytest.mark.parametrize("data, key", [
    (base(quant={"w_bit": 4}), "quant.w_bit: unknown key (did you mean 'quant.w_bits'?)"),
    (base(optimizer={}), "optimizer: unknown key"),
    (base(optim={"epochs": "ten"}), "optim.epochs: expected int"),
    (base(optim={"epochs": True}), "optim.epochs: expected int"),
    (base(optim={"lr": "fast"}), "optim.lr: expected float"),
    (base(quant=[]), "quant: expected a mapping"),
])
def test_unknown_keys_and_wrong_types_name_the_key(data, key):
    with pytest.raises(ConfigError) as err:
        load_config(data)
    assert key in str(err.value)


def test_int_is_accepted_for_float():
    assert load_config(base(optim={"lr": 1})).optim.lr == 1.0


@pytest.mark.parametrize("bits", [1, 9, 16])
def test_bits_outside_2_to_8_are_refused(bits):
    with pytest.raises(ConfigError, match="quant.w_bits: must be in 2..8"):
        load_config(base(quant={"w_bits": bits, "a_bits": 4}))
    with pytest.raises(ConfigError, match="quant.a_bits: must be in 2..8"):
        load_config(base(quant={"w_bits": 4, "a_bits": bits}))


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_p_outside_unit_interval(p):
    with pytest.raises(ConfigError, match=r"quant.sfp_p: must be in \[0, 1\]"):
        load_config(base(quant={"sfp_p": p}))


@pytest.mark.parametrize("data, key", [
    (base(arch="vgg16"), "arch: 'vgg16' is not one of"),
    (base(method="dorefa"), "method: 'dorefa' is not one of"),
    (base(data={"dataset": "imagenet"}), "data.dataset: 'imagenet'"),
    (base(data={"source": "npz"}), "data.path: required"),
    (base(optim={"epochs": -1}), "optim.epochs: must be >= 1"),
    (base(optim={"lr": -0.1}), "optim.lr: must be > 0"),
    (base(optim={"weight_decay": -1.0}), "optim.weight_decay"),
    (base(teacher=""), "teacher: method 'lsq' needs an FP teacher"),
    ({"arch": "resnet20", "method": "fp", "quant": {"w_bits": 4}}, "w_bits/a_bits must be 32"),
    (base(runtime={"device": "tpu"}), "runtime.device"),
    ({"method": "fp"}, "RunConfig"),
])
def test_out_of_range_values_name_the_key(data, key):
    with pytest.raises(ConfigError) as err:
        load_config(data)
    assert key in str(err.value)


def test_overrides_parse_yaml_values():
    out = with_overrides(base(), ["optim.epochs=5", "quant.sfp_p=0.3", "runtime.bf16=true"])
    cfg = load_config(out)
    assert cfg.optim.epochs == 5 and cfg.quant.sfp_p == 0.3 and cfg.runtime.bf16 is True
    with pytest.raises(ConfigError, match="key=value"):
        with_overrides(base(), ["optim.epochs"])


def test_effective_dict_drops_only_unused_keys_and_loads_back():
    from fpq.config import effective_dict

    lsq = load_config(base())
    d = effective_dict(lsq)
    assert "kd_temperature" not in d["quant"] and "sfp_p" not in d["quant"] and "csd_lambda" not in d["quant"]
    assert d["quant"]["w_bits"] == 4 and "hessian" in d and "progress" not in d["runtime"]
    assert load_config(d) == lsq
    fpq = load_config(base(method="fpq", quant={"w_bits": 2, "a_bits": 4, "sfp_p": 0.3, "kd_temperature": 9.0}))
    d = effective_dict(fpq)
    assert d["quant"]["sfp_p"] == 0.3 and "csd_lambda" in d["quant"] and "kd_temperature" not in d["quant"]
    teacher = load_config({"arch": "resnet18", "method": "fp"})
    assert set(effective_dict(teacher)) == {"arch", "method", "seed", "run_id", "data", "optim", "runtime"}
