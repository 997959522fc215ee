"""An ``async def`` method (Python 3 only): waits ``seconds``, then answers."""

import asyncio


async def invoke(worker, parameters):
    await asyncio.sleep(parameters.get('seconds', 0.01))
    return {'waited': parameters.get('seconds', 0.01), 'n': parameters.get('n')}
