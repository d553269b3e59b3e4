from typing import Annotated

from fastapi import Depends, Request

from intake.bootstrap import Intake


def get_intake(request: Request) -> Intake:
    intake: Intake = request.app.state.intake
    return intake


IntakeDep = Annotated[Intake, Depends(get_intake)]
