"""The confirmation step of an action on a trade: a message with Confirm and Cancel buttons.

Only the admin who asked can press them (for a channel's management message: any admin, `Pressers`).
Confirm acts once: the buttons are taken off before the server
is asked, a second press finds the decision made, and the Idempotency-Key (derived from the command, see
`cogs/trade_actions.py`) makes even a repeated request act once on the server. Cancel, or no press
within the timeout, acts not at all and says so. When the server did not answer, the message offers
"Try again", which repeats the same request under the same key.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import discord

from hit_bot import render_trades
from hit_bot.render_trades import Plan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Done:
    """What became of a confirmed action: the embed to show, and whether trying again makes sense."""

    embed: discord.Embed
    may_retry: bool = False
    acted: bool = False  # the server did it


Runner = Callable[[str], Awaitable[Done]]  # called with the name of who confirmed


@dataclass(frozen=True)
class Pressers:
    """Who may press the buttons, and what anyone else is told."""

    allowed: Callable[[discord.abc.User], bool]
    refusal: str


class ConfirmView(discord.ui.View):
    def __init__(
        self,
        plan: Plan,
        owner_id: int,
        timeout: float,
        run: Runner,
        *,
        retry: bool = False,
        pressers: Pressers | None = None,
    ) -> None:
        super().__init__(timeout=timeout)
        self.plan = plan
        self.owner_id = owner_id
        self.pressers = pressers or Pressers(
            lambda user: user.id == owner_id, "Only the admin who asked can confirm or cancel this."
        )
        self.run = run
        self.message: discord.Message | None = None
        self.decided = False
        if retry:
            self.confirm.label = "Try again"

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if self.pressers.allowed(interaction.user):
            return True
        await interaction.response.send_message(self.pressers.refusal, ephemeral=True)
        return False

    def _decide(self) -> bool:
        """True for the first decision only (no await between the test and the mark: one event loop)."""
        if self.decided:
            return False
        self.decided = True
        self.stop()
        return True

    @discord.ui.button(label="Confirm", style=discord.ButtonStyle.danger)
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button[ConfirmView]) -> None:
        if not self._decide():
            await interaction.response.defer()
            return
        await interaction.response.edit_message(embed=render_trades.working_embed(self.plan), view=None)
        try:
            done = await self.run(str(interaction.user))
        except Exception:
            log.exception("the %s of %s failed in the bot", self.plan.action.value, self.plan.signal_id)
            done = Done(render_trades.failed_embed(self.plan))
        view = None
        if done.may_retry:
            view = ConfirmView(
                self.plan,
                self.owner_id,
                self.timeout or 60.0,
                self.run,
                retry=True,
                pressers=self.pressers,
            )
            view.message = self.message
        try:
            await interaction.edit_original_response(embed=done.embed, view=view)
        except discord.HTTPException as exc:
            log.warning(
                "could not show the outcome of %s on %s: %s",
                self.plan.action.value,
                self.plan.signal_id,
                exc.status,
            )

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button[ConfirmView]) -> None:
        if not self._decide():
            await interaction.response.defer()
            return
        embed = render_trades.settled_embed(
            self.plan, "Cancelled", "Nothing was done.", discord.Colour.light_grey()
        )
        await interaction.response.edit_message(embed=embed, view=None)

    async def on_timeout(self) -> None:
        if not self._decide() or self.message is None:
            return
        embed = render_trades.settled_embed(
            self.plan,
            "⌛ Timed out",
            f"No confirmation within {self.timeout:g} s: nothing was done.",
            discord.Colour.light_grey(),
        )
        try:
            await self.message.edit(embed=embed, view=None)
        except discord.HTTPException as exc:
            log.warning(
                "could not mark the confirmation of %s as timed out: %s", self.plan.signal_id, exc.status
            )
