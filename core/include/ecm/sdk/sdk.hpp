// The whole ECM plugin SDK. A plugin includes this and nothing else of the ECM.
#pragma once

#include "ecm/sdk/event.hpp"
#include "ecm/sdk/hook.hpp"
#include "ecm/sdk/launcher.hpp"
#include "ecm/sdk/listener.hpp"
#include "ecm/sdk/localizer.hpp"
#include "ecm/sdk/plugin.hpp"
#include "ecm/sdk/readiness.hpp"
#include "ecm/sdk/result.hpp"
#include "ecm/sdk/version.hpp"
