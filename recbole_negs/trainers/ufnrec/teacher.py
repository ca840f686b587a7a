"""An exponential moving average of a model's weights (Tarvainen & Valpola 2017), UFNRec's mean teacher.

The teacher is a copy of the RecBole model that is never in the optimizer and never gets a gradient; after
every optimizer step ``teacher = d_n * teacher + (1 - d_n) * student`` with ``d_n = min(d, (1 + n) / (10 + n))``
and n counting updates from 1 (the warm-up of the authors' code).
"""

import copy

import torch


class MeanTeacher:
    def __init__(self, student, decay):
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(student)
        for module in self.model.modules():
            module._forward_hooks.clear()  # the student's adapter hooks do not belong to the copy
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)

    def current_decay(self):
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, student):
        self.updates += 1
        d = self.current_decay()
        for mine, theirs in zip(self.model.parameters(), student.parameters()):
            mine.mul_(d).add_(theirs.detach(), alpha=1 - d)
        for mine, theirs in zip(self.model.buffers(), student.buffers()):
            mine.copy_(theirs)

    def state_dict(self):
        return {"weights": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state):
        self.model.load_state_dict(state["weights"])
        self.updates = state["updates"]
