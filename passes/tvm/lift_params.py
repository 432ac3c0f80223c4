"""Turn a Relax ``main``'s embedded constants (the model's weights) into trailing parameters.

TVMScript can only print constants as a metadata section, and printing that
section crashes TVM 0.27 (``show_meta=True`` segfaults). With the weights as
parameters the module prints as plain, re-parsable TVMScript and the values
travel beside it in an ``.npz``.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax


@relax.expr_functor.mutator
class _Lift(relax.PyExprMutator):
    def __init__(self, mod: tvm.IRModule) -> None:
        super().__init__(mod)
        self.lifted: list[tuple[relax.Var, np.ndarray]] = []

    def visit_generic_const_(self, const: tvm.ir.expr.GenericConst) -> relax.Expr:
        var = relax.Var(f"const{len(self.lifted)}", const.ty)
        self.lifted.append((var, const.value.numpy()))
        return var


def lift_constants(mod: tvm.IRModule) -> tuple[tvm.IRModule, list[tuple[str, np.ndarray]]]:
    """``mod`` whose ``main`` takes every constant as a parameter after its own, with the values."""
    main = mod["main"]
    lifter = _Lift(mod)
    body = lifter.visit_expr(main.body)
    if not lifter.lifted:
        return mod, []
    params = [*main.params, *(v for v, _ in lifter.lifted)]
    out = mod.clone()
    out["main"] = relax.Function(params, body, main.ret_ty, main.is_pure, main.attrs)
    return out, [(v.name, value) for v, value in lifter.lifted]
